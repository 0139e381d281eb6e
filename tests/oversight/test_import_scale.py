"""Imports at scale: the same queries for 10 rows as for 200, a dry run that only reads, and a cap of
at least 10,000 findings."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory
from tests.oversight.test_imports import HEADERS, NEW_SLUG, counts, csv_bytes, good_row, history_counts
from tracker import imports
from tracker.models import Recommendation, RecommendationEvent
from tracker.permissions import Role

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def owners(org):
    """Twenty owners: ten rows name ten of them, two hundred rows name all twenty."""
    return [UserFactory(username=f"owner{n}", organisation=org, roles=[Role.OWNER]) for n in range(20)]


def _file(rows: int, slug: str = NEW_SLUG, owners: tuple[str, ...] = ("olly", "otto", "lead", ""), **changes) -> bytes:
    return csv_bytes(
        [
            good_row(
                **{
                    "Inspection slug": slug,
                    "Reference": f"R{n}",
                    "Owner username": owners[n % len(owners)],
                    "Target date": "" if n % 3 == 0 else "2026-09-30",
                    "Themes": "" if n % 5 == 0 else "missing-children",
                    **changes,
                }
            )
            for n in range(1, rows + 1)
        ]
    )


def _writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


def test_an_import_takes_the_same_queries_for_10_rows_as_for_200(lead, owners):
    sizes = {}
    for rows, slug in ((10, "small"), (200, "large")):
        content = _file(rows, slug, owners=tuple(o.username for o in owners) + ("",) * 7)
        lead = type(lead).objects.get(pk=lead.pk)  # no roles cached from the run before
        with CaptureQueriesContext(connection) as queries:
            report = imports.import_recommendations(content, by=lead, filename=f"{slug}.csv")
        assert report.rows == rows
        inserts = sum(q["sql"].startswith("INSERT") for q in queries.captured_queries)
        sizes[rows] = (len(queries) - inserts, inserts)
    (reads_10, inserts_10), (reads_200, inserts_200) = sizes[10], sizes[200]
    assert reads_10 == reads_200, sizes
    # A thousand rows per INSERT; SQLite allows 999 parameters a statement, so there Django splits each
    # batch into statements of 50 to 110 rows: a few more per hundred rows (the per-row path took 30 a row),
    # each finding's quotation (issue 14) included.
    assert inserts_200 - inserts_10 <= 20, sizes
    assert Recommendation.objects.filter(finding__inspection__slug="large").count() == 200
    assert RecommendationEvent.objects.filter(recommendation__finding__inspection__slug="large").count() == (
        200 + 151 + 134  # created; an owner on 20 rows in 27; a target date on two in three
    )


def test_a_dry_run_checks_every_row_and_writes_nothing(lead, olly, otto):
    before = counts(), history_counts()
    with CaptureQueriesContext(connection) as queries:
        report = imports.import_recommendations(_file(200), by=lead, dry_run=True)
    assert report.rows == 200
    assert report.inspections == [NEW_SLUG]
    assert _writes(queries) == []
    assert (counts(), history_counts()) == before


def test_a_dry_run_reports_a_problem_on_the_last_row_and_writes_nothing(lead, olly, otto):
    rows = [good_row(Reference=f"R{n}") for n in range(1, 200)]
    rows.append(good_row(Reference="R200", **{"Owner username": "ghost"}))
    before = counts(), history_counts()
    with CaptureQueriesContext(connection) as queries, pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes(rows), by=lead, dry_run=True)
    assert [str(p) for p in failure.value.problems] == [
        "row 201, column Owner username: nobody called 'ghost' in your organisation"
    ]
    assert _writes(queries) == []
    assert (counts(), history_counts()) == before


def test_ten_thousand_findings_are_within_the_caps():
    assert imports.MAX_ROWS >= 10_000
    assert imports.MAX_SHEET_ROWS > imports.MAX_ROWS
    row = csv_bytes([good_row(Summary="s" * 400, **{"Inspectorate's words": "q" * 200})], header=HEADERS)
    assert 10_000 * len(row) < imports.MAX_BYTES  # a realistic row, ten thousand times, fits the size cap
    rows = imports.read_rows(_file(10_000), "plan.csv")
    assert len(rows) == 10_000
