"""The board pack lists outcome measures off track, and its changes section names what it holds (owners,
target dates, plan action dates, outcome gating and overrides): page and PDF alike, in fixed queries."""

import datetime as dt
import shutil
import subprocess

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import InspectionFactory, RecommendationFactory
from tests.one_rule import MEASURE, last_periods
from tracker import boardpack, workflow
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction

pytestmark = pytest.mark.django_db
PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture
def inspection(org, olly, lead):
    inspection = InspectionFactory(organisation=org)
    held = RecommendationFactory(
        finding__inspection=inspection, finding__reference="CC1", owner=olly, title="Find missing children"
    )
    fine = RecommendationFactory(finding__inspection=inspection, finding__reference="AFI2", owner=olly)
    for rec, name, values in (
        (held, "Missing children found within 24 hours", (95, 91, 84)),
        (fine, "Return interviews within 72 hours", (92, 93, 95)),
    ):
        measure = workflow.add_measure(rec, by=lead, supplier=olly, **{**MEASURE, "name": name})
        for period, value in zip(last_periods(3), values, strict=True):
            workflow.enter_measure_data(measure, by=olly, period=period, value=value)
    item = workflow.add_plan_action(held, by=lead, description="Audit", owner=olly, due_date=dt.date(2027, 1, 31))
    workflow.change_plan_action(
        item, by=lead, description="Audit", owner=olly, due_date=dt.date(2027, 3, 31), reason="Analyst on leave"
    )
    return inspection


def test_the_pack_lists_the_measures_off_track_and_names_its_changes(client, inspection, rita):
    client.force_login(rita)
    html = client.get(reverse("tracker:board-pack", args=[inspection.pk])).content.decode()
    assert "Outcome measures off track (1)" in html
    table = html.split('id="pack-off-track-measures"')[1].split("</table>")[0]
    assert "CC1" in table and "Missing children found within 24 hours" in table and "84%" in table
    assert "at least 90%" in table and "Return interviews" not in table
    assert "Owner, target date, action date and outcome gating changes" in html
    assert "Owner and target-date changes" not in html
    # A moved action date is written in words, like a moved target date.
    assert "31 January 2027" in html and "31 March 2027" in html and "Analyst on leave" in html


def test_no_measure_off_track_is_said_plainly(client, org, rita):
    client.force_login(rita)
    empty = InspectionFactory(organisation=org)
    RecommendationFactory(finding__inspection=empty)
    html = client.get(reverse("tracker:board-pack", args=[empty.pk])).content.decode()
    assert "Outcome measures off track (0)" in html
    assert "No outcome measure of an open recommendation is off track." in html


@pytest.mark.skipif(not PDFTOTEXT, reason="needs poppler-utils (make install)")
def test_the_pdf_lists_them_too(inspection, rita, tmp_path):
    pdf = tmp_path / "pack.pdf"
    pdf.write_bytes(boardpack.render_pdf(boardpack.build(rita, inspection, since=dt.date(2026, 1, 1))))
    text = subprocess.run([PDFTOTEXT, str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60).stdout  # noqa: S603
    flat = " ".join(text.split())
    assert "Outcome measures off track (1)" in flat and "Missing children found within 24 hours" in flat
    assert "Owner, target date, action date and outcome gating changes" in flat


def test_the_pack_runs_the_same_queries_at_10_and_500_actions_and_data_points(inspection, rita, olly):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            boardpack.build(rita, inspection, since=dt.date(2026, 1, 1))
        return len(captured)

    def grow(count: int) -> None:
        for measure in OutcomeMeasure.objects.filter(recommendation__finding__inspection=inspection):
            have = measure.data_points.count()
            MeasureDataPoint.objects.bulk_create(
                MeasureDataPoint(measure=measure, period=period, value=50, entered_by=olly)
                for period in last_periods(have + count, dt.date(2020, 1, 1))[:count]
            )
            PlanAction.objects.bulk_create(
                PlanAction(
                    recommendation_id=measure.recommendation_id,
                    description=f"A{i}",
                    owner=olly,
                    due_date=dt.date(2027, 1, 1),
                )
                for i in range(count)
            )

    queries()  # the reader's roles are read once, then remembered on the user
    grow(10)
    at_10 = queries()
    grow(490)
    assert queries() == at_10
