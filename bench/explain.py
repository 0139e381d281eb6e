"""One or more pages on a kept bench database: timing, queries, each query's own time, optionally a profile.

    .venv/bin/python bench/explain.py 50000 /recommendations/ "/@busy" "/dashboard/?inspection=1"
    .venv/bin/python bench/explain.py 50000 --sql "/recommendations/?sort=owner"     # each query timed again
    .venv/bin/python bench/explain.py 50000 --profile "/@lead"                        # cProfile, cumulative
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/explain.py 50000 --sql /

Builds the data of bench/pages.py once (var/bench-explain-N.sqlite3, or the PostgreSQL database named by
BENCH_DATABASE_URL, which must be empty the first time) and reuses it on later runs. A page is URL@who,
who one of reviewer (the default), lead, viewer, busy (the owner of 500) or owner. For finding where a page's
time goes; bench/pages.py is what the README's figures come from.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
args = sys.argv[1:]
if not args or not args[0].isdigit():
    raise SystemExit(__doc__)
n = int(args.pop(0))
profile, sql = "--profile" in args, "--sql" in args
urls = [a for a in args if a not in ("--profile", "--sql")]
if not os.environ.get("BENCH_DATABASE_URL"):
    (ROOT.parent / "var").mkdir(exist_ok=True)
    os.environ["BENCH_DATABASE_URL"] = f"sqlite:///{ROOT.parent / 'var' / f'bench-explain-{n}.sqlite3'}"
sys.path.insert(0, str(ROOT))

import pages  # noqa: E402  (sets up Django on BENCH_DATABASE_URL)
from django.db import connection  # noqa: E402
from django.db.utils import OperationalError, ProgrammingError  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from tracker.models import Recommendation, User  # noqa: E402


def main() -> None:
    try:
        have = Recommendation.objects.count()
    except (OperationalError, ProgrammingError):
        have = 0
    if have != n:
        if have:
            raise SystemExit(f"the database holds {have:,} recommendations, not {n:,}: use an empty one")
        print(f"building {n:,} recommendations ...", file=sys.stderr)
        pages.build(n)
    people = {
        "reviewer": User.objects.get(username="rita"),
        "lead": User.objects.get(username="lena"),
        "viewer": User.objects.get(username="vera"),
        "busy": User.objects.get(username="owner0"),
        "owner": User.objects.get(username=f"owner{max(1, n // 10) // 2}"),
    }
    for spec in urls:
        url, _, who = spec.partition("@")
        client = Client()
        client.force_login(people[who or "reviewer"])
        for _ in range(3):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        print(
            f"{url} [{who or 'reviewer'}] p50 {statistics.median(times):.1f} ms, p95 {times[18]:.1f} ms, "
            f"{len(captured)} queries, {len(response.content):,} bytes"
        )
        if sql:
            for query in captured.captured_queries:
                text = query["sql"]
                if text.startswith("DECLARE"):  # PostgreSQL's server-side cursor for .iterator()
                    text = text.split(" FOR ", 1)[1]
                started = time.perf_counter()
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(text)
                        cursor.fetchall()
                    took = f"{(time.perf_counter() - started) * 1000:7.2f} ms"
                except Exception as exc:  # a query that cannot run again as text
                    took = f"(not rerun: {exc})"
                print(f"  {took}  {text[:400]}")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(10):
                client.get(url)
            profiler.disable()
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(60)


with override_settings(STORAGES=pages.STATIC):
    main()
