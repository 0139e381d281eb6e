"""Benchmark the exports: the streamed CSV (first byte, whole file, memory) and the worker's CSV and XLSX
files (time, memory), in-process, at several sizes.

    .venv/bin/python bench/exports.py                       # 1,000 and 10,000 recommendations
    .venv/bin/python bench/exports.py --rows 1000 10000 50000 100000
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/exports.py --rows 100000   # an empty database

Uses its own temporary SQLite database (touching nothing in var/) and Django's test client as a
governance lead, reading the streamed response a piece at a time as a server would send it. The worker's
files are what its job does (tracker.jobs: the same rows into tracker.exports.write_csv or write_xlsx).
Memory is given twice: Python's own peak allocation while the export runs (tracemalloc) above what was
allocated before, and the process's peak resident memory above its resident memory just before
(Linux: the peak is reset through /proc/self/clear_refs), which counts the database driver's and
openpyxl's C buffers too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="exports-bench-"))
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
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from memory import PeakResident  # noqa: E402  (bench/memory.py)

from tracker import exports, jobs  # noqa: E402
from tracker.models import Finding, Inspection, Organisation, Recommendation, User  # noqa: E402
from tracker.permissions import Role  # noqa: E402


def grow_to(total: int, organisation: Organisation, owner: User) -> None:
    """Add bench recommendations until there are ``total``."""
    inspection, _ = Inspection.objects.get_or_create(
        organisation=organisation,
        slug="bench",
        defaults={"inspectorate": "hmicfrs", "programme": "Bench", "title": "Bench inspection"},
    )
    have = Recommendation.objects.count()
    findings = Finding.objects.bulk_create((
        Finding(inspection=inspection, reference=f"B{n}", kind="concern", title=f"Bench finding {n}",
                summary="Summary of what the inspectorate found " * 4)
        for n in range(have, total)
    ), batch_size=2000)  # fmt: skip
    extra = {"organisation": organisation} if any(f.name == "organisation" for f in Recommendation._meta.fields) else {}
    today = timezone.localdate()
    Recommendation.objects.bulk_create((
        Recommendation(finding=f, title=f.title, owner=owner if n % 2 else None, review_interval_days=28,
                       next_review_due=today + dt.timedelta(days=n % 60 - 20), **extra)
        for n, f in enumerate(findings)
    ), batch_size=2000)  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def measure_file(lead: User, write) -> tuple[float, float, int]:
    """What the worker's job does (``write`` is exports.write_xlsx or write_csv) over everything the lead
    sees: seconds, peak resident MB above idle, bytes."""
    path = WORKDIR / "bench.file"
    with PeakResident() as resident:
        started = time.perf_counter()
        write(exports.rows(jobs.selected_recommendations(lead, "")), str(path))
        whole = time.perf_counter() - started
    return whole, resident.mb, path.stat().st_size


def measure(client: Client, memory: bool) -> tuple[float, float, float, int]:
    """First byte (s), whole export (s), peak Python memory above the start (MB), bytes sent.

    Tracing memory slows Python several times over, so times are taken on a separate, untraced run. The
    site streams a CSV of up to CSV_STREAM_MAX_ROWS rows and has the worker write a longer one; here it
    is streamed at every size, to time the stream itself.
    """
    if memory:
        tracemalloc.start()
    start_memory, _ = tracemalloc.get_traced_memory()
    started = time.perf_counter()
    with override_settings(CSV_STREAM_MAX_ROWS=10**9):
        response = client.get("/recommendations/export.csv")
    pieces = iter(response.streaming_content)
    size = len(next(pieces))
    first = time.perf_counter() - started
    for piece in pieces:
        size += len(piece)
    whole = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    if memory:
        tracemalloc.stop()
    return first, whole, (peak - start_memory) / 2**20, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    call_command("loaddata", "groups", verbosity=0)
    organisation = Organisation.objects.create(slug="bench", name="Bench Constabulary")
    lead = User.objects.create(username="lead", organisation=organisation)
    lead.groups.add(Group.objects.get(name=str(Role.GOVERNANCE_LEAD)))
    owner = User.objects.create(username="owner", organisation=organisation)
    owner.groups.add(Group.objects.get(name=str(Role.OWNER)))
    client = Client()
    client.force_login(lead)
    print(f"Exports on {connection.vendor}")
    print(
        f"{'rows':>8} {'CSV first byte':>15} {'whole':>8} {'Python peak':>12} {'resident peak':>14} {'size':>8}"
        f" | {'worker CSV':>10} {'resident peak':>14} | {'worker XLSX':>11} {'resident peak':>14} {'size':>8}"
    )
    for total in sorted(args.rows):
        grow_to(total, organisation, owner)
        # The first request's one-off costs (URLs, imports) are not the export's: an export of nothing first.
        b"".join(client.get("/recommendations/export.csv?q=no-such-words-anywhere").streaming_content)
        with PeakResident() as resident:
            first, whole, _, size = measure(client, memory=False)
        _, _, peak, _ = measure(client, memory=True)
        csv_whole, csv_resident, _ = measure_file(lead, exports.write_csv)
        xlsx_whole, xlsx_resident, xlsx_size = measure_file(lead, exports.write_xlsx)
        print(
            f"{total:>8,} {first * 1000:>13.0f}ms {whole:>7.2f}s {peak:>10.1f}MB {resident.mb:>12.1f}MB"
            f" {size / 2**20:>6.1f}MB | {csv_whole:>9.2f}s {csv_resident:>12.1f}MB"
            f" | {xlsx_whole:>10.2f}s {xlsx_resident:>12.1f}MB {xlsx_size / 2**20:>6.1f}MB"
        )


if __name__ == "__main__":
    main()
