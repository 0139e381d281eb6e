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


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    # The suite's own database is in memory, where SQLite ignores WAL: open a real file instead,
    # through the connection options the settings build from DATABASE_URL. No django.setup(): a
    # connection needs only the settings, not the apps.
    database = tmp_path / "tracker.sqlite3"
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{database}",
        SQLITE_BUSY_TIMEOUT_SECONDS="7",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.db import connection\n"
            "with connection.cursor() as cursor:\n"
            "    for pragma in ('journal_mode', 'busy_timeout', 'synchronous'):\n"
            "        cursor.execute(f'PRAGMA {pragma}')\n"
            "        print(cursor.fetchone()[0])\n"
            "print(connection.transaction_mode)\n",
        ],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # synchronous=NORMAL is 1; busy_timeout is in milliseconds.
    assert result.stdout.split() == ["wal", "7000", "1", "IMMEDIATE"]
    assert database.exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "false"}, "The environment variable SECRET_KEY must be set"),
        ({"REMINDER_LEAD_DAYS": "seven"}, "REMINDER_LEAD_DAYS='seven' is not a whole number"),
        ({"DEFAULT_REVIEW_INTERVAL_DAYS": "0"}, "DEFAULT_REVIEW_INTERVAL_DAYS=0 must be at least 1"),
        ({"DEFAULT_REVIEW_INTERVAL_DAYS": "367"}, "DEFAULT_REVIEW_INTERVAL_DAYS=367 must be at most 366"),
        ({"CACHE_URL": "memcached://cache:11211"}, "CACHE_URL='memcached://cache:11211' is not a redis://"),
    ],
)
def test_a_bad_setting_stops_start_up_with_a_message(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_postgres_comes_from_database_url():
    result = load_settings(DATABASE_URL="postgres://tracker:secret@db.internal:5432/tracker")
    assert result.stdout.split()[0] == "django.db.backends.postgresql"
