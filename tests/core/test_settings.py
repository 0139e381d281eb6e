"""Settings parse strictly: a typo stops start-up with a message instead of a silent default."""

import os
import subprocess
import sys

import pytest
from django.conf import settings


def load_settings(**env):
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DATABASES['default']['ENGINE'], s.DEBUG)"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_defaults_are_sqlite_in_development():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PRAGMA is SQLite's; `make test-postgres` runs this suite on PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
    if connection.vendor == "sqlite" and "memory" not in str(connection.settings_dict["NAME"]):
        assert mode == "wal"
    assert settings.DATABASES["default"].get("OPTIONS", {}).get("timeout", 1) >= 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "false"}, "The environment variable SECRET_KEY must be set"),
        ({"REMINDER_LEAD_DAYS": "seven"}, "REMINDER_LEAD_DAYS='seven' is not a whole number"),
        ({"DEFAULT_REVIEW_INTERVAL_DAYS": "0"}, "DEFAULT_REVIEW_INTERVAL_DAYS=0 must be at least 1"),
    ],
)
def test_a_bad_setting_stops_start_up_with_a_message(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_postgres_comes_from_database_url():
    result = load_settings(DATABASE_URL="postgres://tracker:secret@db.internal:5432/tracker")
    assert result.stdout.split()[0] == "django.db.backends.postgresql"
