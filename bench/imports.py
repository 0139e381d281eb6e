"""Benchmark the import: a CSV of N findings for a new inspection, checked (dry run) and imported.

    .venv/bin/python bench/imports.py                       # 1,000 and 10,000 rows
    .venv/bin/python bench/imports.py --rows 1000 10000
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/imports.py   # an empty database

Uses its own temporary SQLite database (touching nothing in var/) and calls
``tracker.imports.import_recommendations`` as a governance lead, as the admin page and the command do.
Each row names one of 500 owners, and most have a target date and a theme, so every kind of row,
event and history record is written. Times include reading and checking the file.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from string import ascii_uppercase

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="imports-bench-"))
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{WORKDIR / 'bench.sqlite3'}",
    VAR_DIR=str(WORKDIR),
    DEBUG="false",
    SECRET_KEY=secrets.token_urlsafe(32),
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="false",
    LOG_LEVEL="WARNING",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tracker import imports  # noqa: E402
from tracker.exports import COLUMNS  # noqa: E402
from tracker.models import Organisation, Theme, User  # noqa: E402
from tracker.permissions import Role  # noqa: E402

OWNERS = 500


def csv_file(rows: int, slug: str) -> bytes:
    header = [c.header for c in COLUMNS if c.importable]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    for n in range(rows):
        writer.writerow(
            {
                "Inspection slug": slug,
                "Inspection": f"Bench inspection {slug}",
                "Inspectorate": "HMICFRS",
                "Programme": "National child protection inspection",
                "Published": "March 2026",
                "Reference": f"R{ascii_uppercase[n // 1000]}{n % 1000}",  # the rules allow 3 digits
                "Kind": "Cause of concern",
                "Title": f"Respond to missing children, finding {n}",
                "Summary": "The response to children who go missing was slow and inconsistent. " * 4,
                "Quotation": "children were not always found quickly",
                "Source": "The inspection report",
                "Source location": f"page {n % 90 + 1}",
                "Themes": "" if n % 5 == 0 else "bench-theme",
                "Owner username": "" if n % 4 == 0 else f"owner{n % OWNERS}",
                "Target date": "" if n % 3 == 0 else "2027-03-31",
                "Review interval (days)": "28",
                "Outcome measure": "Children are found faster.",
            }
        )
    return buffer.getvalue().encode("utf-8-sig")


def run(content: bytes, lead: User, dry_run: bool) -> tuple[float, int, int]:
    """Seconds, queries, and the queries that wrote."""
    lead = User.objects.get(pk=lead.pk)  # no roles cached from an earlier run
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        imports.import_recommendations(content, by=lead, filename="bench.csv", dry_run=dry_run)
        seconds = time.perf_counter() - started
    writes = sum(q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in queries.captured_queries)
    return seconds, len(queries), writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    call_command("loaddata", "groups", verbosity=0)
    organisation = Organisation.objects.create(slug="bench", name="Bench Constabulary")
    lead = User.objects.create(username="lead", organisation=organisation)
    lead.groups.add(Group.objects.get(name=str(Role.GOVERNANCE_LEAD)))
    owners = User.objects.bulk_create(
        User(username=f"owner{n}", first_name="Owner", last_name=str(n), organisation=organisation)
        for n in range(OWNERS)
    )
    Group.objects.get(name=str(Role.OWNER)).user_set.add(*owners)
    Theme.objects.get_or_create(slug="bench-theme", defaults={"name": "Bench theme"})
    print(f"CSV import on {connection.vendor} ({OWNERS} owners)")
    print(f"{'rows':>8} {'run':>8} {'MB':>5} {'time':>8} {'rows/s':>8} {'queries':>8} {'writes':>7}")
    for rows in sorted(args.rows):
        for dry_run in (True, False):
            content = csv_file(rows, f"bench-{rows}")
            seconds, queries, writes = run(content, lead, dry_run)
            kind = "dry run" if dry_run else "import"
            size = len(content) / 2**20
            print(
                f"{rows:>8,} {kind:>8} {size:>5.1f} {seconds:>7.2f}s {rows / seconds:>8,.0f} {queries:>8} {writes:>7}"
            )


if __name__ == "__main__":
    main()
