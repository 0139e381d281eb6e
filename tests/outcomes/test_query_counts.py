"""Query counts stay fixed as actions and data points grow: the list page, the API's lists, the dashboard
and the recommendation page, each at 10 and at 500 actions and data points per recommendation."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.api.conftest import client_for  # noqa: F401 (fixture)
from tests.factories import InspectionFactory, RecommendationFactory
from tests.one_rule import MEASURE, last_periods, submitted
from tracker import workflow
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def recs(org, olly, otto, rita):
    """Three recommendations (two causes of concern awaiting closure, one plain), each with a measure."""
    inspection = InspectionFactory(organisation=org)
    made = []
    for kind in ("cause_of_concern", "cause_of_concern", "recommendation"):
        rec = submitted(RecommendationFactory(finding__inspection=inspection, finding__kind=kind, owner=olly), olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        rec.refresh_from_db()
        OutcomeMeasure.objects.create(recommendation=rec, supplier=otto, **MEASURE)
        made.append(rec)
    return made


def grow(recs, owner, count: int) -> None:
    """``count`` more actions (some slipped, some done) and data points for each recommendation's measure."""
    today = dt.date.today()
    for rec in recs:
        start = PlanAction.objects.filter(recommendation=rec).count()
        PlanAction.objects.bulk_create(
            PlanAction(
                recommendation=rec,
                description=f"Action {i}",
                owner=owner,
                due_date=today + dt.timedelta(days=i % 60 - 30),
                status="done" if i % 3 == 0 else "not_started",
            )
            for i in range(start, start + count)
        )
        for measure in rec.measures.all():
            have = measure.data_points.count()
            MeasureDataPoint.objects.bulk_create(
                MeasureDataPoint(measure=measure, period=period, value=80 + i % 20, entered_by=owner)
                for i, period in enumerate(last_periods(have + count)[:count])
            )


def _counted(get, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = get(url)
        assert response.status_code == 200, url
    return len(captured)


PAGES = {
    "list page": lambda recs: reverse("tracker:recommendations"),
    "dashboard": lambda recs: reverse("tracker:dashboard"),
    "recommendation page": lambda recs: recs[0].get_absolute_url(),
    "list page filtered to an inspection": lambda recs: (
        reverse("tracker:recommendations") + f"?inspection={recs[0].finding.inspection_id}"
    ),
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("persona", ["lead", "rita", "olly"])
def test_the_pages_run_the_same_queries_at_10_and_500(client, request, recs, olly, page, persona):
    if page == "dashboard" and persona == "olly":
        pytest.skip("owners have no dashboard")
    client.force_login(request.getfixturevalue(persona))
    url = PAGES[page](recs)
    _counted(client.get, url)  # roles and settings read once
    grow(recs, olly, 10)
    at_10 = _counted(client.get, url)
    grow(recs, olly, 490)
    assert PlanAction.objects.filter(recommendation=recs[0]).count() == 500
    assert recs[0].measures.get().data_points.count() == 500
    assert _counted(client.get, url) == at_10, (page, persona)


API = ["/api/recommendations/", "/api/plan-actions/", "/api/measures/", "/api/measure-data/"]


@pytest.mark.parametrize("url", API)
@pytest.mark.parametrize("persona", ["lead", "rita", "olly"])
def test_the_api_lists_run_the_same_queries_at_10_and_500(client_for, request, recs, olly, url, persona):  # noqa: F811
    api = client_for(request.getfixturevalue(persona))
    _counted(api.get, url)
    grow(recs, olly, 10)
    at_10 = _counted(api.get, url)
    grow(recs, olly, 490)
    assert _counted(api.get, url) == at_10, (url, persona)
