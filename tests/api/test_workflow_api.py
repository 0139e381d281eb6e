"""Workflow actions through the API: the same module as the pages, its refusals as 409, stale writes as 412."""

import io

import pytest
from rest_framework.test import APIClient

from tests.factories import EvidenceFactory, RecommendationFactory
from tracker.models import Evidence, Finding, Recommendation, RecommendationEvent

Status = Recommendation.Status


def test_an_owner_takes_a_recommendation_from_update_to_closure_with_a_reviewer(rec, olly, rita, client_for):
    owner, reviewer = client_for(olly), client_for(rita)

    response = owner.post(
        "/api/updates/",
        {"recommendation": rec.pk, "narrative": "Audited 40 missing-child episodes.", "rag": "amber", "version": 1},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["author"]["username"] == "olly"
    rec.refresh_from_db()
    assert (rec.status, rec.rag) == (Status.IN_PROGRESS, "amber")

    response = owner.post(
        "/api/evidence/",
        {
            "recommendation": rec.pk,
            "kind": "link",
            "category": "outcome",
            "description": "Audit of response times",
            "link": "https://example.org/audit",
            "version": rec.version,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    evidence_id = response.json()["id"]
    assert response.json()["verdict"] == "pending"

    rec.refresh_from_db()
    response = owner.post(f"/api/recommendations/{rec.pk}/submit/", {"version": rec.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "awaiting_assurance"

    assert reviewer.post(f"/api/evidence/{evidence_id}/accept/").json()["verdict"] == "accepted"
    rec.refresh_from_db()
    response = reviewer.post(f"/api/recommendations/{rec.pk}/accept/", {"version": rec.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert list(rec.events.values_list("action", flat=True)) == [
        "started",
        "update",
        "rag_changed",
        "evidence_added",
        "submitted",
        "evidence_accepted",
        "closed",
    ]


def test_an_illegal_transition_is_409_with_the_workflow_reason(rec, olly, client_for):
    response = client_for(olly).post(f"/api/recommendations/{rec.pk}/submit/", {"version": 1}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only a recommendation in progress can be submitted for assurance; this one is not started.",
        "code": "conflict",
    }
    rec.refresh_from_db()
    assert rec.status == Status.NOT_STARTED


def test_a_cause_of_concern_cannot_be_submitted_on_outputs_alone(org, olly, client_for):
    rec = RecommendationFactory(
        finding__inspection__organisation=org, finding__kind=Finding.Kind.CAUSE_OF_CONCERN, owner=olly
    )
    Recommendation.objects.filter(pk=rec.pk).update(status=Status.IN_PROGRESS)
    EvidenceFactory(recommendation=rec, category=Evidence.Category.OUTPUT)

    response = client_for(olly).post(f"/api/recommendations/{rec.pk}/submit/", {"version": 1}, format="json")

    assert response.status_code == 409
    assert "outcome for children" in response.json()["detail"]


def test_an_owner_who_is_also_a_lead_cannot_close_their_own_recommendation(awaiting_assurance, lead, client_for):
    Recommendation.objects.filter(pk=awaiting_assurance.pk).update(owner=lead)

    response = client_for(lead).post(
        f"/api/recommendations/{awaiting_assurance.pk}/accept/", {"version": awaiting_assurance.version}, format="json"
    )

    assert response.status_code == 409
    assert "four eyes" in response.json()["detail"]


def test_rejecting_a_submission_without_a_reason_is_refused(awaiting_assurance, rita, client_for):
    response = client_for(rita).post(
        f"/api/recommendations/{awaiting_assurance.pk}/reject/", {"version": awaiting_assurance.version}, format="json"
    )

    # A missing reason is a malformed request (400), not a state conflict (409).
    assert response.status_code == 400
    assert response.json()["detail"] == "Give a reason for rejecting the submission."
    awaiting_assurance.refresh_from_db()
    assert awaiting_assurance.status == "awaiting_assurance"


def test_a_stale_version_is_412_and_nothing_is_saved(in_progress, lead, client_for):
    stale = in_progress.version
    assert client_for(lead).post(
        f"/api/recommendations/{in_progress.pk}/change-review-interval/",
        {"version": stale, "review_interval_days": 14},
        format="json",
    ).status_code == 200  # fmt: skip
    events = RecommendationEvent.objects.count()

    response = client_for(lead).post(
        f"/api/recommendations/{in_progress.pk}/change-target-date/",
        {"version": stale, "target_date": "2027-01-31"},
        format="json",
    )

    assert response.status_code == 412
    assert response.json()["code"] == "stale"
    assert "changed by someone else" in response.json()["detail"]
    in_progress.refresh_from_db()
    assert in_progress.target_date is None
    assert RecommendationEvent.objects.count() == events


def test_a_stale_progress_update_is_refused(in_progress, olly, client_for):
    response = client_for(olly).post(
        "/api/updates/",
        {"recommendation": in_progress.pk, "narrative": "More", "version": in_progress.version - 1},
        format="json",
    )

    assert response.status_code == 412
    assert in_progress.updates.count() == 1


def test_the_lead_edits_details_and_the_answer_is_the_new_version(rec, lead, client_for):
    response = client_for(lead).patch(
        f"/api/recommendations/{rec.pk}/",
        {"version": 1, "outcome_measure": "Children found within 2 hours"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["outcome_measure"] == "Children found within 2 hours"
    assert response.json()["title"] == rec.title
    assert response.json()["version"] == 2


def test_a_file_is_checked_stored_and_linked_to_the_download_view(rec, olly, client_for):
    upload = io.BytesIO(b"Response times audited: median 40 minutes.\n")
    upload.name = "audit.txt"

    response = client_for(olly).post(
        "/api/evidence/",
        {
            "recommendation": rec.pk,
            "kind": "file",
            "category": "outcome",
            "description": "Audit",
            "file": upload,
            "version": 1,
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["original_filename"] == "audit.txt"
    assert body["content_type"] == "text/plain"
    assert body["download_url"] == f"/evidence/{body['id']}/download/"
    assert "file" not in body  # the stored name is never shown


def test_a_file_whose_content_is_not_what_its_name_says_is_400(rec, olly, client_for):
    upload = io.BytesIO(b"<html><script>alert(1)</script></html>")
    upload.name = "report.pdf"

    response = client_for(olly).post(
        "/api/evidence/",
        {"recommendation": rec.pk, "kind": "file", "category": "output", "description": "x", "file": upload},
        format="multipart",
    )

    assert response.status_code == 400
    assert "its content is not" in " ".join(response.json()["errors"]["file"])
    assert not Evidence.objects.exists()


@pytest.mark.parametrize("authenticate", ["session", "token"])
def test_both_sessions_and_tokens_sign_in(rec, olly, client_for, authenticate):
    if authenticate == "session":
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(olly)
    else:
        client = client_for(olly)

    assert client.get(f"/api/recommendations/{rec.pk}/").status_code == 200


def test_a_session_write_without_the_csrf_token_is_refused(rec, olly):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(olly)

    response = client.post("/api/updates/", {"recommendation": rec.pk, "narrative": "x", "version": 1}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_anonymous_requests_are_told_how_to_sign_in(rec):
    response = APIClient().get("/api/recommendations/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
