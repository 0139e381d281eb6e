"""Benchmark the board pack: its data (tracker.boardpack.build) and its PDF (WeasyPrint), as the worker
makes them, for one inspection of several sizes.

    .venv/bin/python bench/boardpack.py                      # inspections of 500 and 2,000 recommendations
    .venv/bin/python bench/boardpack.py --recs 500 2000 5000
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/boardpack.py --recs 2000   # an empty database, one size

Each size is bench/pages.py's data with ten inspections of that many recommendations each (so 5,000 is
the 50,000 of the pages' figures), in a throwaway SQLite database under var/; the pack is of the newest
inspection as its governance lead sees it, since the default date. Prints seconds and peak resident
memory (above the process before) for the data and for the PDF, and the PDF's pages and size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import pages
from django.db import connection
from django.test.utils import override_settings
from memory import PeakResident

from tracker import boardpack
from tracker.models import Inspection, User


def measure(recs: int) -> tuple[float, float, float, float, int, int]:
    pages.build(recs * 10)
    lead = User.objects.get(username="lena")
    inspection = Inspection.objects.order_by("pk").first()
    since = boardpack.default_since(boardpack.timezone.localdate())
    with PeakResident() as data_memory:
        started = time.perf_counter()
        pack = boardpack.build(lead, inspection, since=since)
        data_seconds = time.perf_counter() - started
    with PeakResident() as pdf_memory:
        started = time.perf_counter()
        pdf = boardpack.render_pdf(pack)
        pdf_seconds = time.perf_counter() - started
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    page_count = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return data_seconds, data_memory.mb, pdf_seconds, pdf_memory.mb, page_count, len(pdf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recs", type=int, nargs="+", default=[500, 2000], help="recommendations per inspection")
    args = parser.parse_args()
    if os.environ.get("BENCH_DATABASE_URL") and len(args.recs) > 1:
        parser.error("with BENCH_DATABASE_URL, one size per run (each on an empty database)")
    print(f"Board pack on {connection.vendor}")
    print(f"{'recs':>6} {'data':>8} {'memory':>9} | {'PDF':>8} {'memory':>9} {'pages':>6} {'size':>8}")
    try:
        for recs in args.recs:
            db = pages.WORKDIR / "bench.sqlite3"
            connection.close()
            if db.exists():
                db.unlink()
            with override_settings(STORAGES=pages.STATIC):
                data_s, data_mb, pdf_s, pdf_mb, page_count, size = measure(recs)
            print(
                f"{recs:>6,} {data_s:>7.2f}s {data_mb:>7.1f}MB | {pdf_s:>7.1f}s {pdf_mb:>7.1f}MB"
                f" {page_count:>6} {size / 2**20:>6.1f}MB"
            )
    finally:
        connection.close()
        pages.shutil.rmtree(pages.WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
