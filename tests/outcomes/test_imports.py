"""Imports carry plan actions and outcome measures in two optional columns ("Action plan", "Measure
definitions"): one item per line, its parts separated by |. Absent columns change nothing; a bad line is
reported by row, column and line, and nothing is imported; a dry run only checks; owners and suppliers are
held to the workflow's rule; an export of the plan imports back."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import InspectionFactory, RecommendationFactory, ThemeFactory
from tests.oversight.test_imports import HEADERS, NEW_SLUG, csv_bytes, good_row
from tracker import imports, workflow
from tracker.models import (
    Inspection,
    OutcomeMeasure,
    PlanAction,
    Recommendation,
    RecommendationEvent,
)

pytestmark = pytest.mark.django_db

PLAN = "Audit 20 missing-child cases | otto | 2026-10-31\nBrief the night shift | olly@example.org | 31/12/2026"
MEASURES = (
    "Missing children found within 24 hours | Share of episodes closed within 24 hours | % | higher | 61 | "
    "2025-01-15 | 90 | 2027-03-31 | monthly | otto"
)
Event = RecommendationEvent.Action


def everything() -> tuple[int, ...]:
    models = (Inspection, Recommendation, RecommendationEvent, PlanAction, OutcomeMeasure)
    return (*(m.objects.count() for m in models), PlanAction.history.count(), OutcomeMeasure.history.count())


def row(**changes) -> list[object]:
    return good_row(**{"Action plan": PLAN, "Measure definitions": MEASURES, **changes})


@pytest.fixture(autouse=True)
def theme(db):
    return ThemeFactory(slug="missing-children")


@pytest.fixture
def people(olly, otto):
    olly.email = "olly@example.org"
    olly.save()
    return olly, otto


def test_the_columns_make_actions_and_measures_with_history_and_timeline(people, lead):
    olly, otto = people
    report = imports.import_recommendations(csv_bytes([row()]), by=lead, filename="plan.csv")
    assert report.rows == 1
    rec = Recommendation.objects.get(finding__inspection__slug=NEW_SLUG)
    actions = list(rec.plan_actions.order_by("due_date").values_list("description", "owner", "due_date", "status"))
    assert actions == [
        ("Audit 20 missing-child cases", otto.pk, dt.date(2026, 10, 31), "not_started"),
        ("Brief the night shift", olly.pk, dt.date(2026, 12, 31), "not_started"),
    ]
    measure = rec.measures.get()
    assert (measure.name, measure.unit, measure.direction, measure.frequency, measure.supplier) == (
        "Missing children found within 24 hours",
        "%",
        "higher",
        "monthly",
        otto,
    )
    assert (measure.baseline_value, measure.baseline_period) == (Decimal(61), dt.date(2025, 1, 1))  # its month
    assert (measure.target_value, measure.target_date) == (Decimal(90), dt.date(2027, 3, 31))
    assert PlanAction.history.filter(history_user=lead).count() == 2
    assert OutcomeMeasure.history.filter(history_user=lead).count() == 1
    added = rec.events.filter(action__in=[Event.PLAN_ACTION_ADDED, Event.MEASURE_ADDED])
    assert sorted(added.values_list("action", "actor__username", "reason")) == [
        ("measure_added", "lead", "Imported from plan.csv"),
        ("plan_action_added", "lead", "Imported from plan.csv"),
        ("plan_action_added", "lead", "Imported from plan.csv"),
    ]


def test_without_the_columns_or_with_blank_cells_nothing_is_added(people, lead):
    header = [h for h in HEADERS if h not in ("Action plan", "Measure definitions")]
    values = dict(zip(HEADERS, good_row(), strict=True))
    imports.import_recommendations(csv_bytes([[values[h] for h in header]], header=header), by=lead)
    imports.import_recommendations(
        csv_bytes([row(**{"Inspection slug": "other-2026", "Action plan": "", "Measure definitions": " "})]), by=lead
    )
    assert Recommendation.objects.filter(finding__inspection__slug__in=[NEW_SLUG, "other-2026"]).count() == 2
    assert not PlanAction.objects.exists() and not OutcomeMeasure.objects.exists()


BAD = {
    "unknown owner": (
        {"Action plan": "Audit | ghost | 2026-10-31"},
        "row 2, column Action plan: line 1: nobody called 'ghost' in your organisation",
    ),
    "a viewer cannot own an action": (
        {"Action plan": "Audit | otto | 2026-10-31\nBrief | vic | 2026-11-30"},
        "row 2, column Action plan: line 2: 'vic' cannot own an action: only owners and governance leads can",
    ),
    "another organisation's person": (
        {"Measure definitions": MEASURES.replace("| otto", "| mallory")},
        "row 2, column Measure definitions: line 1: nobody called 'mallory' in your organisation",
    ),
    "a bad date": (
        {"Action plan": "Audit | otto | 31/02/2026"},
        "row 2, column Action plan: line 1: the due date '31/02/2026' is not a date; write it as YYYY-MM-DD",
    ),
    "a date the workflow refuses": (
        {"Action plan": "Audit | otto | 2150-01-01"},
        "row 2, column Action plan: line 1: The due date must be between 2000 and 2099.",
    ),
    "too few parts": (
        {"Action plan": "Audit | otto"},
        "row 2, column Action plan: line 1: has 2 parts; write 3, separated by |: description | owner | due date",
    ),
    "no description": (
        {"Action plan": " | otto | 2026-10-31"},
        "row 2, column Action plan: line 1: Say what will be done.",
    ),
    "a bad direction": (
        {"Measure definitions": MEASURES.replace("| higher |", "| up |")},
        "row 2, column Measure definitions: line 1: the direction 'up' is not one of: higher, lower",
    ),
    "a bad number": (
        {"Measure definitions": MEASURES.replace("| 90 |", "| ninety |")},
        "row 2, column Measure definitions: line 1: Enter the target as a number",
    ),
    "the same measure twice": (
        {"Measure definitions": MEASURES + "\n" + MEASURES},
        "row 2, column Measure definitions: line 2: a second measure called 'Missing children found within 24 hours'",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_line_is_reported_by_row_column_and_line_and_nothing_is_imported(case, people, lead, vic, mallory):
    changes, message = BAD[case]
    before = everything()
    for dry_run in (True, False):
        with pytest.raises(imports.ImportFailed) as failure:
            imports.import_recommendations(csv_bytes([row(**changes)]), by=lead, dry_run=dry_run)
        found = [str(p) for p in failure.value.problems]
        assert any(f.startswith(message) for f in found), (message, found)
    assert everything() == before


def test_a_dry_run_checks_the_columns_and_writes_nothing(people, lead):
    before = everything()
    report = imports.import_recommendations(csv_bytes([row()]), by=lead, dry_run=True)
    assert report.rows == 1 and everything() == before


def test_an_action_owner_who_lost_the_role_while_the_file_was_checked_is_refused(people, lead, monkeypatch):
    _olly, otto = people
    planned_then = imports.plan

    def plan_then_deactivate(*args, **kwargs):
        result = planned_then(*args, **kwargs)
        otto.is_active = False
        otto.save()
        return result

    monkeypatch.setattr(imports, "plan", plan_then_deactivate)
    before = everything()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([row()]), by=lead)
    assert "row 2, column Action plan: 'otto' can no longer own an action" in str(failure.value)
    assert everything() == before


def test_only_governance_leads_may_import_a_plan(people, rita):
    with pytest.raises(imports.permissions.NotPermitted):
        imports.import_recommendations(csv_bytes([row()]), by=rita)
    assert not PlanAction.objects.exists()


def test_an_exported_plan_and_its_measures_import_back(client, org, people, lead, rita):
    olly, otto = people
    inspection = InspectionFactory(organisation=org)
    rec = RecommendationFactory(finding__inspection=inspection, owner=olly)
    workflow.add_plan_action(rec, by=lead, description="Audit | sample", owner=otto, due_date=dt.date(2026, 10, 31))
    workflow.add_measure(
        rec,
        by=lead,
        supplier=otto,
        name="Repeat episodes",
        definition="Children missing again\nwithin 90 days",
        unit="",
        direction="lower",
        baseline_value="12.5",
        baseline_period=dt.date(2025, 4, 1),
        target_value=8,
        target_date=dt.date(2027, 3, 31),
        frequency="quarterly",
    )
    client.force_login(rita)
    response = client.get(reverse("tracker:export-csv"), {"inspection": inspection.pk})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    rows[0][header.index("Inspection slug")] = NEW_SLUG
    imports.import_recommendations(csv_bytes(rows, header), by=lead)
    copy = Recommendation.objects.get(finding__inspection__slug=NEW_SLUG)
    assert list(copy.plan_actions.values_list("description", "owner", "due_date")) == [
        ("Audit / sample", otto.pk, dt.date(2026, 10, 31))  # a | inside a part would split it
    ]
    fields = ("name", "definition", "unit", "direction", "baseline_value", "baseline_period", "target_value")
    fields += ("target_date", "frequency", "supplier")
    assert list(copy.measures.values_list(*fields)) == [
        (
            "Repeat episodes",
            "Children missing again within 90 days",
            "",
            "lower",
            Decimal("12.5"),
            dt.date(2025, 4, 1),
            Decimal(8),
            dt.date(2027, 3, 31),
            "quarterly",
            otto.pk,
        )
    ]


def test_the_import_runs_no_query_per_action_or_measure(people, lead):
    """Actions and measures are written a batch per INSERT, like the rows: 10 or 80 actions, the same reads and
    the same INSERTs give or take SQLite's limit on a statement's parameters, which splits a history batch
    at about sixty rows (a query per action would add eighty)."""

    def queried(slug: str, lines: int) -> tuple[int, int]:
        plan = "\n".join(f"Action {i} | otto | 2026-10-31" for i in range(lines))
        rows = [row(**{"Inspection slug": slug, "Reference": f"CC{n}", "Action plan": plan}) for n in range(10)]
        by = type(lead).objects.get(pk=lead.pk)  # no roles cached from the import before
        with CaptureQueriesContext(connection) as captured:
            imports.import_recommendations(csv_bytes(rows), by=by)
        inserts = sum(q["sql"].lstrip().upper().startswith("INSERT") for q in captured.captured_queries)
        return len(captured) - inserts, inserts

    reads_1, inserts_1 = queried("first-2026", 1)
    reads_8, inserts_8 = queried("second-2026", 8)
    assert reads_8 == reads_1
    assert inserts_1 <= inserts_8 <= inserts_1 + 2
    assert PlanAction.objects.count() == 10 * 9
