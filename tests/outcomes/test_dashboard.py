"""Issue 16 on the dashboard: outcome measures off track, in a fixed number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import RecommendationFactory
from tests.one_rule import MEASURE, last_periods
from tracker.models import MeasureDataPoint, OutcomeMeasure

pytestmark = pytest.mark.django_db


def _measure(org, owner, name, values, **kw):
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=owner)
    measure = OutcomeMeasure.objects.create(recommendation=rec, supplier=owner, **{**MEASURE, "name": name, **kw})
    MeasureDataPoint.objects.bulk_create(
        MeasureDataPoint(measure=measure, period=period, value=value, entered_by=owner)
        for period, value in zip(last_periods(len(values)), values, strict=True)
    )
    return measure


def test_the_dashboard_lists_measures_whose_latest_value_misses_the_target(client, org, olly, rita):
    _measure(org, olly, "Found within a day", [95, 70])
    _measure(org, olly, "Repeat episodes", [30, 12], direction="lower", target_value=10)
    _measure(org, olly, "Return interviews held", [70, 95])
    _measure(org, olly, "Referrals on time", [5, 8], direction="lower", target_value=10)
    client.force_login(rita)
    html = client.get(reverse("tracker:dashboard")).content.decode()
    assert "Outcome measures off track (2)" in html
    assert "Found within a day" in html and "Repeat episodes" in html
    assert "Return interviews held" not in html and "Referrals on time" not in html


def test_the_dashboard_runs_the_same_queries_at_10_and_500_measures_with_data(client, org, olly, rita):
    client.force_login(rita)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("tracker:dashboard")).status_code == 200
        return len(captured)

    for i in range(10):
        _measure(org, olly, f"Measure {i}", [80, 85])
    at_10 = queries()
    for i in range(10, 500):
        _measure(org, olly, f"Measure {i}", [80])
    assert queries() == at_10
    html = client.get(reverse("tracker:dashboard")).content.decode()
    assert "Outcome measures off track (500)" in html and html.count('href="/recommendations/') < 200
