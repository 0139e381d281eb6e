"""Production settings: `check --deploy` is clean, and gunicorn with WhiteNoise sends the hardened headers.

Each runs in a subprocess with a production environment of its own (DEBUG off, a long random secret
key, one host, an https site URL), so nothing of the test settings leaks in.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "tracker.example.org"


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Only what a production machine would set: no development variable is inherited."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": HOST,
        "SITE_URL": f"https://{HOST}",
        "DATABASE_URL": f"sqlite:///{var_dir / 'tracker.sqlite3'}",
        "VAR_DIR": str(var_dir),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_check_deploy_passes_with_no_warning_under_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("switched_off", "warning"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"SESSION_COOKIE_SECURE": "false"}, "security.W012"),
        ({"CSRF_COOKIE_SECURE": "false"}, "security.W016"),
    ],
)
def test_check_deploy_fails_when_a_protection_is_switched_off(tmp_path, switched_off, warning):
    result = manage(production_env(tmp_path, **switched_off), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """gunicorn serving config.wsgi with production settings behind one (pretend) TLS-terminating proxy."""
    var_dir = tmp_path_factory.mktemp("production")
    env = production_env(var_dir, TRUSTED_PROXY_COUNT="1")
    # The static files the sign-in page uses; the API docs' and admin's bundles only make this slower.
    ignore = ["drf_spectacular_sidecar", "rest_framework", "admin", "*.scss", "*.njk", "*.html", "*.md"]
    collected = manage(env, "collectstatic", "--noinput", "-v0", *[arg for name in ignore for arg in ("-i", name)])
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    log = (var_dir / "gunicorn.log").open("w")
    process = subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        assert process.poll() is None and time.monotonic() < deadline, (var_dir / "gunicorn.log").read_text()
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(10)
    log.close()


def get(port: int, path: str, *, https: bool = True, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = {"Host": HOST, "X-Forwarded-For": "203.0.113.7", **headers}
    if https:
        sent["X-Forwarded-Proto"] = "https"
    connection.request("GET", path, headers=sent)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_plain_http_is_redirected_to_https(gunicorn):
    response, _ = get(gunicorn, "/accounts/login/", https=False)

    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOST}/accounts/login/"


def test_pages_carry_hsts_csp_referrer_policy_and_secure_cookies(gunicorn):
    response, body = get(gunicorn, "/accounts/login/")

    assert response.status == 200
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    cookie = response.getheader("Set-Cookie")
    assert "csrftoken=" in cookie and "Secure" in cookie
    directives = [part.strip().partition(" ") for part in response.getheader("Content-Security-Policy").split(";")]
    policy = {name: value for name, _, value in directives}
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    nonce = re.fullmatch(r"'self' 'nonce-([\w+/=-]+)'", policy["script-src"]).group(1)
    scripts = re.findall(rb"<script[^>]*>", body)
    inline = [tag for tag in scripts if b"src=" not in tag]
    assert inline and all(f'nonce="{nonce}"'.encode() in tag for tag in inline)
    assert get(gunicorn, "/accounts/login/")[0].getheader("Content-Security-Policy") != response.getheader(
        "Content-Security-Policy"
    )  # a new nonce for every response


def test_static_files_are_served_by_whitenoise_hashed_compressed_and_cached_for_ever(gunicorn):
    _, page = get(gunicorn, "/accounts/login/")
    stylesheet = re.search(rb'href="(/static/govuk/govuk-frontend\.min\.[0-9a-f]{12}\.css)"', page).group(1).decode()

    response, body = get(gunicorn, stylesheet, **{"Accept-Encoding": "gzip"})

    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert "immutable" in response.getheader("Cache-Control")
    assert body[:2] == b"\x1f\x8b"
    assert response.getheader("Server", "").startswith("gunicorn")
