"""Benchmark the review-reminder sweep: query count, planning time against raw SQL, digests per second.

    .venv/bin/python bench/reminders.py            # 100,000 open recommendations, 10,000 owners
    .venv/bin/python bench/reminders.py --n 10000  # smaller
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/reminders.py  # on PostgreSQL (`make bench-postgres`)

Uses its own temporary SQLite database (or the empty database BENCH_DATABASE_URL names, which it fills)
and an aiosmtpd server on loopback; touches nothing in var/.
The planning query count is measured at N/10 and at N: it must be the same.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="reminder-bench-"))
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{WORKDIR / 'bench.sqlite3'}",
    VAR_DIR=str(WORKDIR),
    LOG_LEVEL="WARNING",
    DEBUG="false",  # as in production: no query log kept in memory
    SECRET_KEY="bench-only-not-a-secret",
    ALLOWED_HOSTS="localhost",
)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from tracker import reminders  # noqa: E402
from tracker.models import Finding, Inspection, Organisation, Recommendation, Reminder, User  # noqa: E402
from tracker.permissions import Role  # noqa: E402

RAW_DUE_ROWS = """
WITH leads AS (
  SELECT u.id FROM tracker_user u JOIN tracker_user_groups ug ON ug.user_id = u.id
    JOIN auth_group g ON g.id = ug.group_id
   WHERE g.name = :lead AND u.is_active
)
SELECT r.id, r.owner_id, 'due_soon', r.next_review_due, 0
  FROM tracker_recommendation r JOIN tracker_user o ON o.id = r.owner_id
 WHERE r.status IN ('not_started', 'in_progress', 'awaiting_assurance') AND o.is_active
   AND r.next_review_due BETWEEN :today AND :soon
UNION ALL
SELECT r.id, r.owner_id, 'overdue', r.next_review_due,
       (CAST(julianday(:today) - julianday(r.next_review_due) AS INTEGER) - 1) / :repeat
  FROM tracker_recommendation r JOIN tracker_user o ON o.id = r.owner_id
 WHERE r.status IN ('not_started', 'in_progress', 'awaiting_assurance') AND o.is_active AND r.next_review_due < :today
UNION ALL
SELECT r.id, c.id, 'escalation', r.next_review_due, 0
  FROM tracker_recommendation r JOIN tracker_user o ON o.id = r.owner_id JOIN tracker_user c ON c.id = o.escalation_contact_id
 WHERE r.status IN ('not_started', 'in_progress', 'awaiting_assurance') AND o.is_active AND c.is_active
   AND r.next_review_due <= :escalate
UNION ALL
SELECT r.id, l.id, 'escalation', r.next_review_due, 0
  FROM tracker_recommendation r JOIN tracker_user o ON o.id = r.owner_id
  LEFT JOIN tracker_user c ON c.id = o.escalation_contact_id
  JOIN tracker_finding f ON f.id = r.finding_id JOIN tracker_inspection i ON i.id = f.inspection_id
  JOIN tracker_user l ON l.organisation_id = i.organisation_id AND l.id IN (SELECT id FROM leads)
 WHERE r.status IN ('not_started', 'in_progress', 'awaiting_assurance') AND o.is_active
   AND r.next_review_due <= :escalate AND (c.id IS NULL OR NOT c.is_active)
UNION ALL
SELECT r.id, l.id, 'unowned', r.next_review_due, 0
  FROM tracker_recommendation r LEFT JOIN tracker_user o ON o.id = r.owner_id
  JOIN tracker_finding f ON f.id = r.finding_id JOIN tracker_inspection i ON i.id = f.inspection_id
  JOIN tracker_user l ON l.organisation_id = i.organisation_id AND l.id IN (SELECT id FROM leads)
 WHERE r.status IN ('not_started', 'in_progress', 'awaiting_assurance') AND (o.id IS NULL OR NOT o.is_active)
"""


SMTP_SERVER = """
import signal, sys, threading
from aiosmtpd.controller import Controller

class Counting:
    received = 0

    async def handle_DATA(self, server, session, envelope):
        Counting.received += 1
        return "250 OK"

controller = Controller(Counting(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
controller.stop()
print(Counting.received, flush=True)
"""


class QueryCounter:
    """Counts every query the code under test sends, however many there are."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryCounter:
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._wrapper.__exit__(*exc)

    def __len__(self) -> int:
        return self.count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(n: int, owners: int, today: dt.date, seed: int = 1) -> None:
    """N open recommendations spread from 40 days overdue to 60 days ahead; 5% unowned."""
    rng = random.Random(seed)
    Reminder.objects.all().delete()
    Recommendation.objects.all().delete()
    Finding.objects.all().delete()
    Inspection.objects.all().delete()
    User.objects.all().delete()
    Organisation.objects.all().delete()
    org = Organisation.objects.create(slug="bench", name="Bench Constabulary")
    inspection = Inspection.objects.create(
        organisation=org, slug="bench", inspectorate="hmicfrs", programme="Bench", title="Bench inspection"
    )
    lead_group, _ = Group.objects.get_or_create(name=str(Role.GOVERNANCE_LEAD))
    leads = User.objects.bulk_create(
        [User(username=f"lead{i}", email=f"lead{i}@bench.example", organisation=org) for i in range(2)]
    )
    for lead in leads:
        lead.groups.add(lead_group)
    contacts = User.objects.bulk_create(
        [User(username=f"contact{i}", email=f"contact{i}@bench.example", organisation=org) for i in range(100)]
    )
    people = User.objects.bulk_create(
        [
            User(
                username=f"owner{i}",
                email=f"owner{i}@bench.example",
                organisation=org,
                escalation_contact=contacts[i % 100] if i % 2 else None,
            )
            for i in range(owners)
        ],
        batch_size=2000,
    )
    findings = Finding.objects.bulk_create(
        [
            Finding(inspection=inspection, reference=f"F{i}", kind="concern", title=f"Finding {i}", summary="-")
            for i in range(n)
        ],
        batch_size=2000,
    )
    Recommendation.objects.bulk_create(
        [
            Recommendation(
                finding=finding,
                organisation=org,
                title=finding.title,
                owner=None if rng.random() < 0.05 else people[rng.randrange(owners)],
                review_interval_days=28,
                next_review_due=today + dt.timedelta(days=rng.randint(-40, 60)),
            )
            for finding in findings
        ],
        batch_size=2000,
    )


def raw_due_rows(today: dt.date) -> tuple[int, float]:
    params = {
        "today": today.isoformat(),
        "soon": (today + dt.timedelta(days=settings.REMINDER_LEAD_DAYS)).isoformat(),
        "escalate": (today - dt.timedelta(days=settings.REMINDER_ESCALATION_DAYS)).isoformat(),
        "repeat": settings.REMINDER_OVERDUE_REPEAT_DAYS,
        "lead": str(Role.GOVERNANCE_LEAD),
    }
    sql = RAW_DUE_ROWS
    if connection.vendor == "postgresql":
        # The same query in PostgreSQL's words: date - date is whole days; psycopg's named parameters.
        sql = sql.replace(
            "CAST(julianday(:today) - julianday(r.next_review_due) AS INTEGER)", "(:today::date - r.next_review_due)"
        )
        sql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return len(rows), time.perf_counter() - started


def measure_plan(n: int, owners: int, today: dt.date) -> dict:
    build(n, owners, today)
    if connection.vendor == "postgresql":
        # Statistics, as autovacuum would have gathered by now on a real database: a bulk load has none.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    raw_count, raw_seconds = raw_due_rows(today)
    with QueryCounter() as queries:
        started = time.perf_counter()
        planned = reminders.plan(today)
        plan_seconds = time.perf_counter() - started
    with QueryCounter() as again_queries:
        started = time.perf_counter()
        replanned = reminders.plan(today)
        again_seconds = time.perf_counter() - started
    return {
        "n": n,
        "owners": owners,
        "raw_rows": raw_count,
        "raw_seconds": raw_seconds,
        "planned": planned,
        "plan_queries": len(queries),
        "plan_seconds": plan_seconds,
        "replanned": replanned,
        "replan_queries": len(again_queries),
        "replan_seconds": again_seconds,
    }


def measure_delivery() -> dict:
    """Deliver everything planned to an SMTP server in its own process, as a real one would be."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SMTP_SERVER, str(port)], stdout=subprocess.PIPE, text=True, cwd=WORKDIR
    )
    assert server.stdout.readline().strip() == "ready"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    try:
        with QueryCounter() as queries:
            started = time.perf_counter()
            report = reminders.deliver()
            seconds = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGTERM)
        received = int(server.communicate(timeout=30)[0].strip() or 0)
    digests = len(report.sent)
    return {
        "digests": digests,
        "smtp_received": received,
        "items": sum(len(items) for _, items in report.sent),
        "seconds": seconds,
        "per_second": digests / seconds if seconds else 0.0,
        "queries": len(queries),
        "queries_per_digest": len(queries) / digests if digests else 0.0,
        "failed": len(report.failed) + len(report.retrying),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="open recommendations (default 100,000)")
    parser.add_argument("--owners", type=int, default=None, help="owners (default N/10)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database for inspection")
    args = parser.parse_args()
    if not args.keep:
        atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
    owners = args.owners or max(1, args.n // 10)
    if connection.vendor == "sqlite":
        print(f"SQLite database in {WORKDIR}{'' if args.keep else ' (removed at the end; --keep to keep it)'}")
    else:
        print(f"{connection.vendor} database {connection.settings_dict['NAME']} (left as it is at the end)")
    call_command("migrate", verbosity=0)
    today = timezone.localdate()

    results = []
    for n, people in ((max(10, args.n // 10), max(1, owners // 10)), (args.n, owners)):
        started = time.perf_counter()
        result = measure_plan(n, people, today)
        results.append(result)
        print(
            f"\nN={n:,} open recommendations, {people:,} owners (built in {time.perf_counter() - started:.1f}s)\n"
            f"  raw SQL SELECT of the due rows : {result['raw_rows']:>7,} rows in {result['raw_seconds'] * 1000:8.1f} ms\n"
            f"  sweep planning (INSERT..SELECT): {result['planned']:>7,} rows in {result['plan_seconds'] * 1000:8.1f} ms, "
            f"{result['plan_queries']} queries\n"
            f"  repeated sweep (nothing new)   : {result['replanned']:>7,} rows in {result['replan_seconds'] * 1000:8.1f} ms, "
            f"{result['replan_queries']} queries"
        )
        assert result["planned"] == result["raw_rows"], "the sweep and the raw SQL disagree about what is due"

    delivery = measure_delivery()
    print(
        f"\nDelivery to a local SMTP server (aiosmtpd), batches of {settings.REMINDER_BATCH_RECIPIENTS} recipients:\n"
        f"  {delivery['digests']:,} digests ({delivery['items']:,} items) in {delivery['seconds']:.1f}s = "
        f"{delivery['per_second']:.0f} digests/s; SMTP server received {delivery['smtp_received']:,}\n"
        f"  {delivery['queries']:,} queries = {delivery['queries_per_digest']:.2f} per digest; failures: {delivery['failed']}"
    )
    small, large = results
    verdict = "constant" if small["plan_queries"] == large["plan_queries"] else "GROWS WITH N"
    print(
        f"\nPlanning query count: {small['plan_queries']} at N={small['n']:,}, {large['plan_queries']} at N={large['n']:,}: {verdict}"
    )


if __name__ == "__main__":
    main()
