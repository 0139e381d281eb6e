"""Bounds on what the API accepts: interval, text lengths, JSON depth, body size, query parameters, names."""

import json

import pytest

from tests.web.conftest import PDF_BYTES
from tests.web.test_uploads_and_escaping import _raw_multipart
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    Evidence,
    ProgressUpdate,
    Recommendation,
    RecommendationEvent,
)


def _errors(response) -> dict:
    body = response.json()
    assert set(body) >= {"detail", "code"}, body
    return body.get("errors", {})


# The review interval.


def test_a_review_interval_beyond_the_bound_is_refused_naming_it(rec, lead_api):
    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/change-review-interval/",
        {"version": rec.version, "review_interval_days": MAX_REVIEW_INTERVAL_DAYS + 1},
        format="json",
    )

    assert response.status_code == 400
    assert str(MAX_REVIEW_INTERVAL_DAYS) in " ".join(_errors(response)["review_interval_days"])
    rec.refresh_from_db()
    assert rec.review_interval_days != MAX_REVIEW_INTERVAL_DAYS + 1


def test_the_largest_review_interval_is_accepted(rec, lead_api):
    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/change-review-interval/",
        {"version": rec.version, "review_interval_days": MAX_REVIEW_INTERVAL_DAYS, "reason": "Yearly"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["review_interval_days"] == MAX_REVIEW_INTERVAL_DAYS


# Free text.


def _limit(model, field: str) -> int:
    return model._meta.get_field(field).max_length


def test_an_over_long_narrative_is_a_400_naming_the_field_and_the_limit(rec, olly, client_for):
    limit = _limit(ProgressUpdate, "narrative")

    response = client_for(olly).post(
        "/api/updates/",
        {"recommendation": rec.pk, "narrative": "x" * (limit + 1), "version": rec.version},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert f"{limit}" in " ".join(_errors(response)["narrative"])
    assert not ProgressUpdate.objects.exists()


def test_a_narrative_at_the_limit_is_accepted(rec, olly, client_for):
    limit = _limit(ProgressUpdate, "narrative")

    response = client_for(olly).post(
        "/api/updates/",
        {"recommendation": rec.pk, "narrative": "x" * limit, "version": rec.version},
        format="json",
    )

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field", ["description", "note"])
def test_over_long_evidence_text_is_refused(rec, olly, client_for, field):
    limit = _limit(Evidence, field)
    body = {"recommendation": rec.pk, "kind": "note", "category": "output", "description": "d", "note": "n"}
    body[field] = "x" * (limit + 1)

    response = client_for(olly).post("/api/evidence/", {**body, "version": rec.version}, format="json")

    assert response.status_code == 400
    assert f"{limit}" in " ".join(_errors(response)[field])
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("accept", {}),
        ("reject", {}),
        ("reopen", {}),
        ("change-target-date", {"target_date": "2030-01-01"}),
        ("assign-owner", {"owner": None}),
        ("change-review-interval", {"review_interval_days": 14}),
    ],
)
def test_an_over_long_reason_is_refused(rec, lead_api, action, extra):
    limit = _limit(RecommendationEvent, "reason")
    events = RecommendationEvent.objects.count()

    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/{action}/",
        {"version": rec.version, "reason": "x" * (limit + 1), **extra},
        format="json",
    )

    assert response.status_code == 400
    assert f"{limit}" in " ".join(_errors(response)["reason"])
    assert RecommendationEvent.objects.count() == events


def test_an_over_long_outcome_measure_is_refused(rec, lead_api):
    limit = _limit(Recommendation, "outcome_measure")

    response = lead_api.patch(
        f"/api/recommendations/{rec.pk}/",
        {"version": rec.version, "outcome_measure": "x" * (limit + 1)},
        format="json",
    )

    assert response.status_code == 400
    assert f"{limit}" in " ".join(_errors(response)["outcome_measure"])


def test_an_over_long_evidence_rejection_reason_is_refused(rec, olly, lead_api):
    from tests.factories import EvidenceFactory

    evidence = EvidenceFactory(recommendation=rec, added_by=olly)
    limit = _limit(Evidence, "rejection_reason")

    response = lead_api.post(f"/api/evidence/{evidence.pk}/reject/", {"reason": "x" * (limit + 1)}, format="json")

    assert response.status_code == 400
    assert f"{limit}" in " ".join(_errors(response)["reason"])
    evidence.refresh_from_db()
    assert evidence.verdict == Evidence.Verdict.PENDING


# Request bodies.


def test_deeply_nested_json_is_a_400_in_the_error_shape(rec, lead_api):
    body = "[" * 1000 + "]" * 1000

    response = lead_api.post(f"/api/recommendations/{rec.pk}/submit/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "nested" in response.json()["detail"]


def test_json_nested_just_beyond_the_depth_limit_is_refused(rec, lead_api):
    from tracker.api.parsers import MAX_JSON_DEPTH

    body = {"version": 1, "reason": "x"}
    nested: object = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    body["reason"] = nested  # now MAX_JSON_DEPTH + 1 levels deep

    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/accept/", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_json_body_over_the_upload_limit_is_a_413_in_the_error_shape(rec, lead_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"version": 1, "reason": "x" * 2000})

    response = lead_api.post(f"/api/recommendations/{rec.pk}/accept/", body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "too_large"
    assert "1000" in response.json()["detail"] or "1 KB" in response.json()["detail"]


def test_a_multipart_body_over_the_upload_limit_is_a_413_in_the_error_shape(rec, olly, client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = client_for(olly).post(
        "/api/evidence/",
        {"recommendation": rec.pk, "kind": "note", "category": "output", "description": "x" * 2000, "note": "n",
         "version": rec.version},
        format="multipart",
    )  # fmt: skip

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def _upload(client, rec, filename: str):
    fields = {"recommendation": rec.pk, "kind": "file", "category": "output", "description": "Audit"}
    return _raw_multipart(client, "/api/evidence/", {**fields, "version": rec.version}, filename, PDF_BYTES)


@pytest.mark.parametrize("name", ["../x.pdf", "../../etc/cron.d/x.pdf", "..", "..\\x.pdf", "/etc/x.pdf"])
def test_an_upload_named_as_a_path_is_refused_as_the_pages_refuse_it(rec, olly, client_for, name):
    response = _upload(client_for(olly), rec, name)

    assert response.status_code == 400, response.content
    assert "without folders" in " ".join(_errors(response)["file"])
    assert not Evidence.objects.exists()


def test_a_plain_upload_name_is_still_accepted(rec, olly, client_for):
    response = _upload(client_for(olly), rec, "audit.pdf")

    assert response.status_code == 201, response.content
    assert response.json()["original_filename"] == "audit.pdf"


# Caching.


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/recommendations/", 200),
        ("/api/recommendations/0/", 404),
        ("/api/nowhere/", 404),
        ("/api/reminders/", 403),
    ],
)
def test_every_api_answer_says_no_store(client_for, olly, rec, path, status):
    response = client_for(olly).get(path)

    assert response.status_code == status
    assert "no-store" in response["Cache-Control"]


def test_an_unauthenticated_api_answer_says_no_store(client_for):
    response = client_for().get("/api/recommendations/")

    assert response.status_code == 401
    assert "no-store" in response["Cache-Control"]


# Query parameters.


@pytest.mark.parametrize(
    ("path", "param", "allowed"),
    [
        ("/api/recommendations/?overdue=maybe", "overdue", "true"),
        ("/api/recommendations/?status=bogus", "status", "not_started"),
        ("/api/recommendations/?ordering=bogus", "ordering", "next_review_due"),
        ("/api/recommendations/?ordering=title,-bogus", "ordering", "title"),
        ("/api/inspections/?tracked=maybe", "tracked", "true"),
        ("/api/inspections/?ordering=secret", "ordering", "published"),
        ("/api/updates/?review_completed=perhaps", "review_completed", "false"),
        ("/api/evidence/?verdict=bogus", "verdict", "accepted"),
        ("/api/findings/?kind=bogus", "kind", "cause_of_concern"),
    ],
)
def test_an_invalid_query_parameter_is_a_400_naming_it_and_the_allowed_values(lead_api, rec, path, param, allowed):
    response = lead_api.get(path)

    assert response.status_code == 400, response.content
    messages = " ".join(_errors(response)[param])
    assert allowed in messages


@pytest.mark.parametrize(
    "query", ["overdue=true", "overdue=false", "overdue=", "ordering=-title", "ordering=title,-id", "status=closed"]
)
def test_valid_query_parameters_still_filter(lead_api, rec, query):
    response = lead_api.get(f"/api/recommendations/?{query}")

    assert response.status_code == 200, response.content
