"""Adding an outcome measure checks the recommendation's version, like its other writes: a stale form or
request is refused with a clear message and nothing is saved."""

import datetime as dt

import pytest
from django.urls import reverse

from tests.api.conftest import client_for  # noqa: F401 (fixture)
from tests.one_rule import MEASURE
from tracker import workflow
from tracker.models import OutcomeMeasure

pytestmark = pytest.mark.django_db


def _date(prefix: str, day: dt.date) -> dict:
    return {f"{prefix}-day": day.day, f"{prefix}-month": day.month, f"{prefix}-year": day.year}


def _form(olly, version: int) -> dict:
    return {
        **{k: MEASURE[k] for k in ("name", "definition", "unit", "direction", "frequency")},
        "baseline_value": "61",
        **_date("baseline_period", dt.date(2025, 1, 1)),
        "target_value": "90",
        **_date("target_date", dt.date(2027, 3, 31)),
        "supplier": olly.pk,
        "version": version,
    }


def _moved_on(rec, lead):
    """Someone else changes the recommendation after the form was shown."""
    read = rec.version
    workflow.set_rag(rec, by=lead, rag="red", reason="Missing-child audit late")
    rec.refresh_from_db()
    assert rec.version == read + 1
    return read


def test_a_stale_measure_form_is_refused_with_a_message_and_adds_nothing(client, rec, lead, olly):
    stale = _moved_on(rec, lead)
    client.force_login(lead)
    url = reverse("tracker:measure-add", args=[rec.pk])
    response = client.post(url, _form(olly, stale))
    assert response.status_code == 200
    assert "changed by someone else while you were working on it" in response.content.decode()
    assert not OutcomeMeasure.objects.filter(recommendation=rec).exists()
    assert client.post(url, _form(olly, rec.version)).status_code == 302
    assert OutcomeMeasure.objects.filter(recommendation=rec).count() == 1


def test_a_stale_measure_request_is_a_412_and_adds_nothing(client_for, rec, lead, olly):  # noqa: F811
    stale = _moved_on(rec, lead)
    body = {**MEASURE, "recommendation": rec.pk, "supplier": olly.pk}
    body = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in body.items()}
    api = client_for(lead)
    refused = api.post("/api/measures/", {**body, "version": stale}, format="json")
    assert refused.status_code == 412
    assert "changed by someone else" in refused.json()["detail"]
    assert not OutcomeMeasure.objects.filter(recommendation=rec).exists()
    missing = api.post("/api/measures/", body, format="json")
    assert missing.status_code == 400 and "version" in str(missing.json())
    created = api.post("/api/measures/", {**body, "version": rec.version}, format="json")
    assert created.status_code == 201, created.json()
    assert OutcomeMeasure.objects.filter(recommendation=rec).count() == 1


def test_the_workflow_refuses_a_stale_version_before_the_state(rec, lead, olly):
    stale = _moved_on(rec, lead)
    with pytest.raises(workflow.StaleRecommendation):
        workflow.add_measure(rec, by=lead, supplier=olly, expected_version=stale, **MEASURE)
    assert not OutcomeMeasure.objects.exists()
