"""Exports carry each recommendation's plan and measures, summed up (done of total, next due, slipped,
measures, measures off track), in the same number of queries however many actions and data points."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from tests.factories import InspectionFactory, RecommendationFactory
from tests.one_rule import MEASURE, last_periods
from tests.oversight.conftest import content, fetch, worker  # noqa: F401 (fixture)
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, Recommendation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker")]

TODAY = dt.date.today()


def _csv(client, url) -> list[dict]:
    response = client.get(url)
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body, newline="")))


def _xlsx(client, url) -> list[dict]:
    sheet = load_workbook(io.BytesIO(content(fetch(client, url)))).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


@pytest.fixture
def planned(org, olly, otto):
    inspection = InspectionFactory(organisation=org)
    rec = RecommendationFactory(finding__inspection=inspection, finding__reference="CC1", owner=olly)
    bare = RecommendationFactory(finding__inspection=inspection, finding__reference="AFI1", owner=olly)
    day = dt.timedelta(days=1)
    PlanAction.objects.bulk_create(
        [
            PlanAction(recommendation=rec, description="Done", owner=otto, due_date=TODAY - 9 * day, status="done"),
            PlanAction(recommendation=rec, description="Late", owner=otto, due_date=TODAY - 2 * day),
            PlanAction(recommendation=rec, description="Next", owner=olly, due_date=TODAY + 5 * day),
            PlanAction(recommendation=rec, description="Later", owner=olly, due_date=TODAY + 40 * day),
        ]
    )
    below = OutcomeMeasure.objects.create(recommendation=rec, supplier=olly, **MEASURE)
    at = OutcomeMeasure.objects.create(recommendation=rec, supplier=olly, **{**MEASURE, "name": "Return interviews"})
    lower = OutcomeMeasure.objects.create(
        recommendation=rec,
        supplier=olly,
        **{**MEASURE, "name": "Repeat episodes", "direction": "lower", "target_value": 10},
    )
    OutcomeMeasure.objects.create(recommendation=rec, supplier=olly, **{**MEASURE, "name": "No data yet"})
    for measure, values in ((below, (95, 80)), (at, (70, 91)), (lower, (5, 12))):
        for period, value in zip(last_periods(2), values, strict=True):
            MeasureDataPoint.objects.create(measure=measure, period=period, value=value, entered_by=olly)
    return inspection, rec, bare


def test_each_row_sums_up_its_plan_and_measures_in_csv_and_excel(client, planned, rita):
    inspection, _rec, _bare = planned
    client.force_login(rita)
    url = f"?inspection={inspection.pk}"
    by_csv = {row["Reference"]: row for row in _csv(client, reverse("tracker:export-csv") + url)}
    assert {k: by_csv["CC1"][k] for k in ("Actions done", "Actions", "Actions slipped")} == {
        "Actions done": "1",
        "Actions": "4",
        "Actions slipped": "1",
    }
    assert by_csv["CC1"]["Next action due"] == (TODAY - dt.timedelta(days=2)).isoformat()  # the slipped one
    # Off track: the latest value misses the target (80 below 90; 12 above a lower-is-better 10); a measure
    # without data is not counted as off track, as on the dashboard.
    assert (by_csv["CC1"]["Measures"], by_csv["CC1"]["Measures off track"]) == ("4", "2")
    assert [by_csv["AFI1"][k] for k in ("Actions done", "Actions", "Next action due", "Measures")] == [
        "0",
        "0",
        "",
        "0",
    ]

    by_xlsx = {row["Reference"]: row for row in _xlsx(client, reverse("tracker:export-xlsx") + url)}
    assert by_xlsx["CC1"]["Actions"] == 4 and by_xlsx["CC1"]["Measures off track"] == 2
    assert by_xlsx["CC1"]["Next action due"].date() == TODAY - dt.timedelta(days=2)
    assert by_xlsx["AFI1"]["Next action due"] is None


def _grow(rec, owner, count: int) -> None:
    PlanAction.objects.bulk_create(
        PlanAction(recommendation=rec, description=f"Action {i}", owner=owner, due_date=TODAY + dt.timedelta(days=i))
        for i in range(count)
    )
    for measure in rec.measures.all():
        have = measure.data_points.count()
        periods = last_periods(have + count, dt.date(2020, 1, 1))[:count]
        MeasureDataPoint.objects.bulk_create(
            MeasureDataPoint(measure=measure, period=period, value=80, entered_by=owner) for period in periods
        )


@pytest.mark.parametrize("name", ["tracker:export-csv", "tracker:export-xlsx"])
def test_the_same_number_of_queries_at_10_and_500_actions_and_data_points_and_more_rows(
    client, planned, rita, olly, name
):
    inspection, rec, bare = planned
    client.force_login(rita)
    url = reverse(name) + f"?inspection={inspection.pk}"

    def queries() -> int:
        # Plan and data writes go through the workflow, whose events make a new file; these rows were made in
        # bulk, so a touch makes the data new instead (else the Excel file of the last call would be reused).
        Recommendation.objects.filter(pk=rec.pk).update(updated_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            response = fetch(client, url)
            assert response.status_code == 200
            assert content(response)  # a streamed CSV reads its rows only now
        return len(captured)

    queries()  # an earlier file of the same query, which each later Excel job deletes
    for each in (rec, bare):
        _grow(each, olly, 10)
    at_10 = queries()
    for each in (rec, bare):
        _grow(each, olly, 490)
    for _ in range(30):  # more rows, each with a plan and a measure with data
        more = RecommendationFactory(finding__inspection=inspection, owner=olly)
        OutcomeMeasure.objects.create(recommendation=more, supplier=olly, **MEASURE)
        _grow(more, olly, 2)
    assert PlanAction.objects.filter(recommendation=bare).count() == 500
    assert queries() == at_10
