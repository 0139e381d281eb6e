"""Benchmark the pages people read: /recommendations/ (first and last page, filters, search, sorts), /, the
API's recommendation list and /dashboard/, in-process with Django's test client.

    .venv/bin/python bench/pages.py                  # 1,000 and 10,000 recommendations
    .venv/bin/python bench/pages.py --n 50000        # one size (10% as many owners, like the issue's 5,000)
    .venv/bin/python bench/pages.py --n 1000 --requests 10
    BENCH_DATABASE_URL=postgres://... .venv/bin/python bench/pages.py --n 50000  # PostgreSQL: an empty database, one size

Builds each size with bulk_create in a throwaway SQLite database under var/bench-pages/ (removed
afterwards unless --keep): one organisation, N/10 owners, one owner with 500 recommendations, a reviewer,
a governance lead, a viewer, ten inspections, a few themes. Prints, per page, p50 and p95 over the requests (after two warm-ups), the
queries per request and the HTML (or JSON) size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = ROOT / "var" / f"bench-pages-{os.getpid()}"
WORKDIR.mkdir(parents=True, exist_ok=True)
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
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from tracker import keyset  # noqa: E402
from tracker.forms import SORTS  # noqa: E402
from tracker.models import Finding, Inspection, Organisation, Recommendation, Theme, User  # noqa: E402
from tracker.permissions import Role  # noqa: E402

STATUSES = ["not_started", "in_progress", "in_progress", "awaiting_assurance", "closed"]
RAGS = ["", "red", "amber", "green"]


def build(n: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    today = timezone.localdate()
    call_command("migrate", verbosity=0)
    call_command("loaddata", "groups", verbosity=0)
    org = Organisation.objects.create(slug="bench", name="Bench Constabulary", kind="police_force")
    inspections = [
        Inspection.objects.create(
            organisation=org, slug=f"bench-{i}", inspectorate="hmicfrs", programme="Bench", title=f"Inspection {i}"
        )
        for i in range(10)
    ]
    themes = Theme.objects.bulk_create(Theme(slug=f"theme-{i}", name=f"Theme {i}") for i in range(8))
    reviewer = User.objects.create_user("rita", first_name="Rita", last_name="Reviewer", organisation=org)
    reviewer.groups.add(Group.objects.get(name=str(Role.REVIEWER)))
    lead = User.objects.create_user("lena", first_name="Lena", last_name="Lead", organisation=org)
    lead.groups.add(Group.objects.get(name=str(Role.GOVERNANCE_LEAD)))
    viewer = User.objects.create_user("vera", first_name="Vera", last_name="Viewer", organisation=org)
    viewer.groups.add(Group.objects.get(name=str(Role.VIEWER)))
    owners = User.objects.bulk_create(
        (
            User(username=f"owner{i}", first_name=f"Owner{i}", last_name=f"Person{i:05d}", organisation=org)
            for i in range(max(1, n // 10))
        ),
        batch_size=2000,
    )
    busy = owners[0]
    User.groups.through.objects.bulk_create(
        User.groups.through(user_id=owner.pk, group_id=Group.objects.get(name=str(Role.OWNER)).pk) for owner in owners
    )
    findings = Finding.objects.bulk_create(
        (
            Finding(
                inspection=inspections[i % 10],
                reference=f"F{i}",
                kind="concern",
                title=f"Finding {i} on {rng.choice(['missing children', 'supervision', 'referrals'])}",
                summary="The force does not consistently respond to risk.",
            )
            for i in range(n)
        ),
        batch_size=2000,
    )
    Finding.themes.through.objects.bulk_create(
        (Finding.themes.through(finding_id=f.pk, theme_id=themes[i % 8].pk) for i, f in enumerate(findings)),
        batch_size=5000,
    )
    Recommendation.objects.bulk_create(
        (
            Recommendation(
                finding=f,
                organisation=org,
                title=f.title,
                owner=busy if i < 500 else (None if rng.random() < 0.05 else rng.choice(owners)),
                status=rng.choice(STATUSES),
                rag=rng.choice(RAGS),
                target_date=None if rng.random() < 0.3 else today + dt.timedelta(days=rng.randint(-60, 400)),
                review_interval_days=28,
                next_review_due=today + dt.timedelta(days=rng.randint(-60, 300)),
                outcome_measure="Audited cases show children located promptly.",
            )
            for i, f in enumerate(findings)
        ),
        batch_size=2000,
    )
    # Each inspection's recommendations were created when it was published, half a year apart: the newest
    # inspection's this week, the others' before the dashboard's twelve weeks.
    now = timezone.now()
    for i, inspection in enumerate(inspections):
        Recommendation.objects.filter(finding__inspection=inspection).update(
            created_at=now - dt.timedelta(days=182 * i)
        )
    with connection.cursor() as cursor:
        # As a live database would have statistics; on PostgreSQL VACUUM also moves the bulk-loaded rows out
        # of the trigram (GIN) indexes' pending lists, as autovacuum would, so that the planner uses them.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"reviewer": reviewer, "lead": lead, "viewer": viewer, "busy": busy, "owner": owners[len(owners) // 2]}


def last_page_cursor(sort: str, size: int = 50) -> str:
    """The cursor of the list's last page, as following Next to the end would reach it."""
    order = keyset.keys(Recommendation, SORTS[sort])
    total = Recommendation.objects.count()
    before = Recommendation.objects.order_by(*(key.order_by() for key in order))[max(0, total - size - 1)]
    return keyset._encode(False, keyset._values(before, order))


def measure(client: Client, url: str, requests: int) -> dict:
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[min(len(times) - 1, round(0.95 * len(times)) - 1)],
        "queries": len(captured),
        "bytes": len(response.content),
    }


# Plain static files: the manifest needs collectstatic, and serving them is not what is measured.
STATIC = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@override_settings(STORAGES=STATIC)
def run(n: int, requests: int) -> list[tuple[str, dict]]:
    people = build(n)
    reviewer, owner, lead, viewer = Client(), Client(), Client(), Client()
    reviewer.force_login(people["reviewer"])
    owner.force_login(people["busy"])
    lead.force_login(people["lead"])
    viewer.force_login(people["viewer"])
    pages = [
        ("/recommendations/ first page", reviewer, "/recommendations/"),
        ("/recommendations/ last page", reviewer, f"/recommendations/?cursor={last_page_cursor('due')}"),
        ("/recommendations/ status+rag filter", reviewer, "/recommendations/?status=in_progress&rag=red"),
        ("/recommendations/ overdue, by title", reviewer, "/recommendations/?overdue=true&sort=title"),
        ("/recommendations/ one owner", reviewer, f"/recommendations/?owner={people['owner'].pk}"),
        ("/recommendations/ owner by name", reviewer, "/recommendations/?owner_name=Person00007"),
        ("/recommendations/ theme", reviewer, "/recommendations/?theme=theme-3"),
        ("/recommendations/ search", reviewer, "/recommendations/?q=supervision"),
        ("/recommendations/ sort by owner", reviewer, "/recommendations/?sort=owner"),
        ("/ owner of 500", owner, "/"),
        # Home's assurance and organisation-wide groups read every visible recommendation's state.
        ("/ reviewer", reviewer, "/"),
        ("/ lead", lead, "/"),
        ("/ viewer", viewer, "/"),  # the organisation's figures and what changed since the last visit
        ("API list, 50", reviewer, "/api/recommendations/"),
        ("API list, last page", reviewer, f"/api/recommendations/?cursor={last_page_cursor('due')}"),
        ("API list, -title", reviewer, "/api/recommendations/?ordering=-title"),
    ]
    # The dashboard: counts, the first few of each list and theme, and charts; never every finding.
    one = Inspection.objects.order_by("pk").first()
    pages += [
        ("/dashboard/", reviewer, "/dashboard/"),
        ("/dashboard/ one inspection", reviewer, f"/dashboard/?inspection={one.pk}"),
    ]
    return [(name, measure(client, url, requests)) for name, client, url in pages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="recommendations (repeatable; default 1000 and 10000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the databases under var/")
    args = parser.parse_args()
    sizes = args.n or [1000, 10_000]
    if os.environ.get("BENCH_DATABASE_URL") and len(sizes) > 1:
        parser.error("with BENCH_DATABASE_URL, one --n per run (each size on an empty database)")
    results = {}
    try:
        for n in sizes:
            db = WORKDIR / "bench.sqlite3"
            connection.close()
            print(f"N={n:,} on {connection.vendor}", file=sys.stderr)
            if db.exists() and not args.keep:
                db.unlink()
            elif db.exists():
                db.rename(WORKDIR / f"bench-{n}.sqlite3")
            started = time.perf_counter()
            results[n] = run(n, args.requests)
            print(f"N={n:,}: built and measured in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    finally:
        connection.close()
        if not args.keep:
            shutil.rmtree(WORKDIR, ignore_errors=True)
    names = [name for name, _ in next(iter(results.values()))]
    header = "| page | " + " | ".join(f"N={n:,} p50 / p95 ms" for n in sizes) + " | queries | size (bytes) |"
    print(header)
    print("|" + " --- |" * (len(sizes) + 3))
    for i, name in enumerate(names):
        cells = [f"{results[n][i][1]['p50']:.1f} / {results[n][i][1]['p95']:.1f}" for n in sizes]
        queries = " / ".join(str(results[n][i][1]["queries"]) for n in sizes)
        sizes_ = " / ".join(f"{results[n][i][1]['bytes']:,}" for n in sizes)
        print(f"| {name} | " + " | ".join(cells) + f" | {queries} | {sizes_} |")


if __name__ == "__main__":
    main()
