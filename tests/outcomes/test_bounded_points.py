"""Memory: a recommendation's measures are loaded with their latest data points only (the last N periods
for the gate, the chart's window on the page), so a long history costs neither memory nor queries."""

import datetime as dt
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import client_for  # noqa: F401 (fixture)
from tests.factories import RecommendationFactory
from tests.one_rule import MEASURE, last_periods, submitted
from tracker import outcomes, policy, workflow
from tracker.models import MeasureDataPoint, OutcomeMeasure, Recommendation
from tracker.permissions import Action
from tracker.plan_views import CHART_PERIODS

pytestmark = pytest.mark.django_db


@contextmanager
def points_loaded():
    """How many data points are made into objects (read from the database) inside the block."""
    loaded = []

    def count(sender, instance, **kwargs):
        loaded.append(instance)

    post_init.connect(count, sender=MeasureDataPoint)
    try:
        yield loaded
    finally:
        post_init.disconnect(count, sender=MeasureDataPoint)


def _gated(org, olly, rita) -> Recommendation:
    rec = submitted(
        RecommendationFactory(finding__inspection__organisation=org, finding__kind="cause_of_concern", owner=olly),
        olly,
    )
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    rec.refresh_from_db()
    return rec


def _history(measure, olly, values: list[int]) -> None:
    """``values`` for the months before this one, the last value for last month."""
    MeasureDataPoint.objects.filter(measure=measure).delete()
    MeasureDataPoint.objects.bulk_create(
        MeasureDataPoint(measure=measure, period=period, value=value, entered_by=olly)
        for period, value in zip(last_periods(len(values)), values, strict=True)
    )


@pytest.fixture
def two(org, olly, rita):
    recs = [_gated(org, olly, rita) for _ in range(2)]
    return [(rec, OutcomeMeasure.objects.create(recommendation=rec, supplier=olly, **MEASURE)) for rec in recs]


def test_the_api_list_loads_the_last_n_periods_of_each_measure_whatever_the_history(client_for, two, olly, rita):  # noqa: F811
    api = client_for(rita)

    def listed() -> tuple[int, int, list]:
        with points_loaded() as loaded, CaptureQueriesContext(connection) as captured:
            response = api.get("/api/recommendations/")
        assert response.status_code == 200
        return len(loaded), len(captured), [row["blocked_actions"] for row in response.json()["results"]]

    for _rec, measure in two:
        _history(measure, olly, [95] * 7 + [80, 95, 95])  # below target 3 months ago: not at target yet
    loaded_10, queries_10, blocked_10 = listed()
    for _rec, measure in two:
        _history(measure, olly, [95] * 497 + [80, 95, 95])
    loaded_500, queries_500, blocked_500 = listed()
    assert loaded_10 == loaded_500 == 2 * outcomes.periods_required()
    assert queries_10 == queries_500
    assert blocked_10 == blocked_500 and "in 2 of the last 3" in str(blocked_500)


def test_a_list_decides_closure_from_the_latest_points_as_it_would_from_all(two, olly, rita):
    cases = {
        "at target after an old gap": [95, 95] + [95] * 3,
        "the latest below": [95] * 40 + [95, 95, 80],
        "a gap among the latest": [95] * 40 + [95, 95],
        "too few": [95, 95],
    }
    (rec, measure), _ = two
    for name, values in cases.items():
        _history(measure, olly, values)
        if name == "at target after an old gap":
            MeasureDataPoint.objects.filter(measure=measure, period=last_periods(5)[1]).delete()
        elif name == "a gap among the latest":
            MeasureDataPoint.objects.filter(measure=measure, period=last_periods(42)[-2]).delete()
        row = policy.with_facts(Recommendation.objects.with_related().filter(pk=rec.pk), rita).get()
        policy.read_measures_together([row])
        listed = policy.decide(rita, row, Action.CLOSE)
        everything = outcomes.standing(measure, list(measure.data_points.all()))
        assert listed.allowed == everything.at_target, name
        assert everything.problem in (listed.reason or ""), name
        assert len(outcomes.points_of(getattr(row, outcomes.GATE_MEASURES)[0])) <= outcomes.periods_required()


def test_the_recommendation_page_loads_the_chart_window_only(client, two, olly, rita):
    (rec, measure), _ = two
    client.force_login(rita)

    def shown() -> tuple[int, int, list]:
        with points_loaded() as loaded, CaptureQueriesContext(connection) as captured:
            response = client.get(rec.get_absolute_url())
        assert response.status_code == 200
        row = response.context["measures"][0]
        return len(loaded), len(captured), row

    _history(measure, olly, [95] * 10)
    _, queries_10, row_10 = shown()
    assert len(row_10.chart.points) == 10 and row_10.count == 10
    _history(measure, olly, [70] * 476 + [95] * 24)
    loaded_500, queries_500, row_500 = shown()
    assert queries_500 == queries_10
    # The chart's window, and the gate's last N periods once more for the policy's answer.
    assert loaded_500 <= CHART_PERIODS + outcomes.periods_required()
    assert len(row_500.chart.points) == CHART_PERIODS and row_500.count == 500
    assert row_500.chart.points[-1].period == last_periods(1)[0] and row_500.standing.at_target
    assert dt.date.fromisoformat(str(row_500.chart.points[0].period)) == last_periods(CHART_PERIODS)[0]
