"""Benchmark the API: recommendation list and detail, beside bare Django views returning the same JSON.

    .venv/bin/python bench/api.py                 # 500 recommendations, 300 requests per endpoint
    .venv/bin/python bench/api.py --requests 100  # quicker
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/api.py --rows 100000  # on PostgreSQL (an empty database)

Uses its own temporary SQLite database and one gunicorn sync worker on 127.0.0.1; touches nothing in
var/. Requests are sequential over fresh connections, in interleaved blocks so that both sides see the
same machine. Before timing, it checks that the bare views really return the same JSON as the API.

This file is also the server's URLconf: the API as the project serves it, plus the bare views.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The server process imports this module too: it must reuse the parent's database, not make another.
WORKDIR = Path(os.environ.get("BENCH_API_WORKDIR") or tempfile.mkdtemp(prefix="api-bench-"))
os.environ.update(
    BENCH_API_WORKDIR=str(WORKDIR),
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{WORKDIR / 'bench.sqlite3'}",
    VAR_DIR=str(WORKDIR),
    DEBUG="false",
    SECRET_KEY=os.environ.get("BENCH_API_SECRET") or secrets.token_urlsafe(32),
    ALLOWED_HOSTS="127.0.0.1",
    SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback: there is no TLS proxy in front
    LOG_LEVEL="WARNING",
)
os.environ["BENCH_API_SECRET"] = os.environ["SECRET_KEY"]

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from tracker import permissions, policy  # noqa: E402
from tracker.models import Finding, Inspection, Organisation, Recommendation, User  # noqa: E402
from tracker.permissions import Role  # noqa: E402
from tracker.seeding import seed  # noqa: E402

PAGE = 50


# The bare side: the same permission rule and the same fields, by hand, without DRF.


def _when(value):
    if value is None:
        return None
    if hasattr(value, "hour"):
        text = timezone.localtime(value).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value.isoformat()


def _bare_user(request: HttpRequest) -> User | None:
    key = request.headers.get("Authorization", "").removeprefix("Token ")
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


def _bare_recommendation(rec: Recommendation, user: User) -> dict:
    owner = rec.owner
    decisions = policy.decisions(user, rec)
    return {
        "id": rec.pk,
        "reference": rec.reference,
        "title": rec.title,
        "finding": rec.finding_id,
        "inspection": rec.finding.inspection_id,
        "organisation": rec.finding.inspection.organisation_id,
        "owner": {"id": owner.pk, "username": owner.username, "name": str(owner)} if owner else None,
        "status": rec.status,
        "rag": rec.rag,
        "target_date": _when(rec.target_date),
        "review_interval_days": rec.review_interval_days,
        "next_review_due": _when(rec.next_review_due),
        "is_overdue": rec.is_overdue(),
        "outcome_measure": rec.outcome_measure,
        "superseded_by": rec.superseded_by_id,
        "version": rec.version,
        "allowed_actions": sorted(a for a, d in decisions.items() if d.allowed),
        "blocked_actions": {str(a): d.reason for a, d in sorted(decisions.items()) if not d.allowed and not d.by_role},
        "created_at": _when(rec.created_at),
        "updated_at": _when(rec.updated_at),
    }


def bare_list(request: HttpRequest) -> JsonResponse:
    user = _bare_user(request)
    if user is None:
        return JsonResponse({"detail": "Sign in."}, status=401)
    visible = permissions.visible_recommendations(user).with_related()
    # The API's first page: its default order, no count (it pages by cursor).
    rows = policy.with_facts(visible, user).order_by("next_review_due", "pk")[:PAGE]
    return JsonResponse({"results": [_bare_recommendation(r, user) for r in rows]})


def bare_detail(request: HttpRequest, pk: int) -> JsonResponse:
    user = _bare_user(request)
    if user is None:
        return JsonResponse({"detail": "Sign in."}, status=401)
    rec = permissions.visible_recommendations(user).with_related().filter(pk=pk).first()
    if rec is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return JsonResponse(_bare_recommendation(rec, user))


urlpatterns = [
    path("bare/recommendations/", bare_list),
    path("bare/recommendations/<int:pk>/", bare_detail),
    path("", include("config.urls")),
]

# Served by gunicorn as bench.api:application, with this module as the URLconf.
override_settings(ROOT_URLCONF="bench.api").enable()
application = get_wsgi_application()


# The driver.


def prepare(total: int) -> tuple[str, int]:
    call_command("migrate", verbosity=0)
    call_command("loaddata", "groups", verbosity=0)
    seed()
    cleveland = Organisation.objects.get(slug="cleveland-police")
    lead = User.objects.create_user("bench-lead", organisation=cleveland)
    lead.groups.add(Group.objects.get(name=str(Role.GOVERNANCE_LEAD)))
    owner = User.objects.create_user("bench-owner", first_name="Olive", last_name="Owner", organisation=cleveland)
    missing = total - Recommendation.objects.count()
    if missing > 0:
        inspection = Inspection.objects.create(
            organisation=cleveland, slug="bench", inspectorate="hmicfrs", programme="Bench", title="Bench inspection"
        )
        findings = Finding.objects.bulk_create((
            Finding(inspection=inspection, reference=f"B{n}", kind="concern", title=f"Bench finding {n}",
                    summary="Summary")
            for n in range(missing)
        ), batch_size=2000)  # fmt: skip
        today = timezone.localdate()
        Recommendation.objects.bulk_create((
            Recommendation(finding=f, organisation=cleveland, title=f.title, owner=owner if n % 2 else None,
                           review_interval_days=28,
                           next_review_due=today + dt.timedelta(days=n % 60 - 20))
            for n, f in enumerate(findings)
        ), batch_size=2000)  # fmt: skip
    if connection.vendor == "postgresql":
        # Statistics, as autovacuum would have gathered by now on a real database: a bulk load has none.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    token = Token.objects.create(user=lead)
    return token.key, Recommendation.objects.order_by("pk").values_list("pk", flat=True)[
        Recommendation.objects.count() // 2
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, url: str, token: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def wait_for(port: int, token: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            get(port, "/bare/recommendations/", token)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="recommendations in the database")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    args = parser.parse_args()

    token, pk = prepare(args.rows)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.api:application", "--chdir", str(ROOT), "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        wait_for(port, token, server)
        endpoints = {
            "API list (page of 50)": f"/api/recommendations/?page_size={PAGE}",
            "bare list (page of 50)": "/bare/recommendations/",
            "API detail": f"/api/recommendations/{pk}/",
            "bare detail": f"/bare/recommendations/{pk}/",
        }
        bodies = {}
        for name, url in endpoints.items():
            status, body = get(port, url, token)
            assert status == 200, (name, status, body[:300])
            bodies[name] = json.loads(body)
        api_list, bare_list_body = bodies["API list (page of 50)"], bodies["bare list (page of 50)"]
        assert api_list["results"] == bare_list_body["results"]
        assert bodies["API detail"] == bodies["bare detail"]
        print(f"Same JSON on both sides: {len(api_list['results'])} recommendations per page.")

        timings: dict[str, list[float]] = {name: [] for name in endpoints}
        block = 25
        for url in endpoints.values():  # warm up
            for _ in range(10):
                get(port, url, token)
        started = time.monotonic()
        for _ in range(max(1, args.requests // block)):
            for name, url in endpoints.items():
                for _ in range(block):
                    t0 = time.perf_counter()
                    status, _body = get(port, url, token)
                    timings[name].append(time.perf_counter() - t0)
                    assert status == 200
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"\n{'endpoint':<24} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, samples in timings.items():
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        rate = len(samples) / sum(samples)
        print(f"{name:<24} {len(samples):>8} {rate:>8.0f} {statistics.median(samples) * 1000:>8.1f} {p95 * 1000:>8.1f}")
    print(f"\n{args.rows} rows, 1 gunicorn sync worker, sequential requests; {elapsed:.0f} s of timing.")
    shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    main()
