"""Issue 16 in the API: the same permission, version and tenancy rules as the pages."""

import datetime as dt

import pytest

from tests.api.conftest import client_for  # noqa: F401 (fixture)
from tests.one_rule import MEASURE, last_periods
from tracker import workflow
from tracker.models import PlanAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def item(rec, olly, otto):
    return workflow.add_plan_action(
        rec, by=olly, description="Train call handlers", owner=otto, due_date=dt.date(2027, 1, 31)
    )


def test_an_owner_plans_and_the_action_owner_completes_theirs_with_its_version(client_for, rec, olly, otto, vic):  # noqa: F811
    created = client_for(olly).post(
        "/api/plan-actions/",
        {"recommendation": rec.pk, "description": "Audit 20 cases", "owner": otto.pk, "due_date": "2027-02-28"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    api = client_for(otto)
    assert [row["id"] for row in api.get("/api/plan-actions/").json()["results"]] == [pk]
    stale = api.post(f"/api/plan-actions/{pk}/status/", {"status": "done", "version": 7}, format="json")
    assert stale.status_code == 412
    done = api.post(f"/api/plan-actions/{pk}/status/", {"status": "done", "version": 1}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "done"
    refused = client_for(vic).post(
        f"/api/plan-actions/{pk}/status/", {"status": "in_progress", "version": 2}, format="json"
    )
    assert refused.status_code == 403
    assert PlanAction.objects.get(pk=pk).status == "done"


def test_blocked_without_a_reason_is_a_400_and_changes_nothing(client_for, item, otto):  # noqa: F811
    response = client_for(otto).post(
        f"/api/plan-actions/{item.pk}/status/", {"status": "blocked", "version": 1}, format="json"
    )
    assert response.status_code == 400 and "reason" in response.json()["detail"]
    item.refresh_from_db()
    assert (item.status, item.version) == ("not_started", 1)


def test_another_organisation_cannot_see_or_touch_them(client_for, item, mallory):  # noqa: F811
    api = client_for(mallory)
    assert api.get(f"/api/plan-actions/{item.pk}/").status_code == 404
    assert (
        api.post(f"/api/plan-actions/{item.pk}/status/", {"status": "done", "version": 1}, format="json").status_code
        == 404
    )
    assert api.get("/api/plan-actions/").json()["results"] == []


def test_a_measure_its_data_and_a_correction_with_a_reason(client_for, rec, lead, olly):  # noqa: F811
    body = {**MEASURE, "recommendation": rec.pk, "supplier": olly.pk, "version": rec.version}
    body = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in body.items()}
    created = client_for(lead).post("/api/measures/", body, format="json")
    assert created.status_code == 201, created.json()
    measure = created.json()["id"]
    api = client_for(olly)
    entered = api.post(
        f"/api/measures/{measure}/data/", {"period": last_periods(1)[0].isoformat(), "value": "88.5"}, format="json"
    )
    assert entered.status_code == 201, entered.json()
    point = entered.json()["id"]
    no_reason = api.post(f"/api/measure-data/{point}/correct/", {"value": "89", "version": 1}, format="json")
    assert no_reason.status_code == 400
    corrected = api.post(
        f"/api/measure-data/{point}/correct/", {"value": "89", "version": 1, "reason": "Late returns"}, format="json"
    )
    assert corrected.status_code == 200 and corrected.json()["value"] == "89.0000"
