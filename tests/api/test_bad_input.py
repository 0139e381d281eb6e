"""Bad input is a 4xx that names the problem, and nothing changes."""

import pytest

from tests.factories import EvidenceFactory, OrganisationFactory, RecommendationFactory, UserFactory
from tracker.models import Evidence, ProgressUpdate, Recommendation, RecommendationEvent
from tracker.permissions import Role


def _state(rec: Recommendation) -> tuple:
    rec.refresh_from_db()
    return (
        rec.version,
        rec.status,
        rec.owner_id,
        rec.target_date,
        rec.title,
        RecommendationEvent.objects.count(),
        ProgressUpdate.objects.count(),
        Evidence.objects.count(),
    )


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        # wrong types
        ("change-review-interval", {"version": 1, "review_interval_days": "fortnightly"}, "review_interval_days", "valid integer"),
        ("change-review-interval", {"version": 1, "review_interval_days": 0}, "review_interval_days", "greater than or equal to 1"),
        ("change-target-date", {"version": 1, "target_date": "next spring"}, "target_date", "Date has wrong format"),
        ("change-target-date", {"version": "one", "target_date": "2027-01-01"}, "version", "valid integer"),
        ("submit", {}, "version", "required"),
        ("submit", {"version": 2**70}, "version", "less than or equal to"),
        # unknown and protected fields: mass assignment is refused, not ignored
        ("change-target-date", {"version": 1, "target_date": "2027-01-01", "status": "closed"}, "status", "Unknown field"),
        ("submit", {"version": 1, "owner": 1, "organisation": 2}, "organisation", "Unknown field"),
    ],
)  # fmt: skip
def test_bad_action_bodies_are_400_naming_the_field(rec, lead_api, path, body, field, message):
    before = _state(rec)

    response = lead_api.post(f"/api/recommendations/{rec.pk}/{path}/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert message in " ".join(response.json()["errors"][field])
    assert field in response.json()["detail"]
    assert _state(rec) == before


def test_a_patch_cannot_set_status_version_or_owner(rec, lead_api, otto):
    before = _state(rec)

    response = lead_api.patch(
        f"/api/recommendations/{rec.pk}/",
        {"version": 1, "title": "Fine", "status": "closed", "owner": otto.pk, "next_review_due": "2030-01-01"},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "owner", "next_review_due"}
    assert _state(rec) == before


def test_read_only_fields_of_a_new_update_are_refused_by_name(rec, olly, lead, client_for):
    before = _state(rec)

    response = client_for(olly).post(
        "/api/updates/",
        {"recommendation": rec.pk, "narrative": "Done", "version": 1, "author": lead.pk, "created_at": "2020-01-01"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "author": ["This field is read-only."],
        "created_at": ["This field is read-only."],
    }
    assert _state(rec) == before


def test_an_owner_cannot_mark_their_own_evidence_accepted(rec, olly, client_for):
    response = client_for(olly).post(
        "/api/evidence/",
        {"recommendation": rec.pk, "kind": "note", "category": "outcome", "description": "x", "note": "y",
         "version": 1, "verdict": "accepted", "reviewed_by": olly.pk},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"verdict", "reviewed_by"}
    assert not Evidence.objects.exists()


def test_a_forged_owner_from_another_organisation_is_refused_without_naming_them(rec, lead_api):
    outsider = UserFactory(username="eve", first_name="Eve", organisation=OrganisationFactory(), roles=[Role.OWNER])
    before = _state(rec)

    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/assign-owner/", {"version": 1, "owner": outsider.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["owner"] == [f"There is no user {outsider.pk} in your organisation."]
    assert "Eve" not in response.content.decode()
    assert _state(rec) == before


def test_an_update_on_another_organisations_recommendation_is_refused(rec, mallory, client_for):
    before = _state(rec)

    response = client_for(mallory).post(
        "/api/updates/", {"recommendation": rec.pk, "narrative": "Hijack", "version": 1}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["recommendation"] == [f"There is no recommendation {rec.pk} that you can see."]
    assert _state(rec) == before


def test_superseding_by_another_organisations_recommendation_is_refused(rec, lead_api, other_org):
    foreign = RecommendationFactory(finding__inspection__organisation=other_org)
    before = _state(rec)

    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/supersede/",
        {"version": 1, "replacement": foreign.pk, "reason": "Merged"},
        format="json",
    )

    assert response.status_code == 400
    assert "replacement" in response.json()["errors"]
    assert _state(rec) == before


@pytest.mark.parametrize("page_size", ["201", "1000000", "0", "-5", "ten", "99999999999999999999999"])
def test_a_page_size_beyond_the_limit_is_refused_with_the_limit(rec, lead_api, page_size):
    response = lead_api.get("/api/recommendations/", {"page_size": page_size})

    assert response.status_code == 400
    assert response.json()["errors"] == {"page_size": ["Choose a page size from 1 to 200."]}


def test_the_largest_page_size_is_accepted(rec, lead_api):
    response = lead_api.get("/api/recommendations/", {"page_size": "200"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"rag": "purple"}, "rag"),
        ({"due_before": "soon"}, "due_before"),
        ({"owner": "999999"}, "owner"),
        ({"inspection": "abc"}, "inspection"),
    ],
)
def test_bad_filters_are_400_naming_the_filter(rec, lead_api, query, field):
    response = lead_api.get("/api/recommendations/", query)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


@pytest.mark.parametrize("pk", ["abc", "99999999999999999999999", "-1", "0"])
def test_ids_that_cannot_exist_are_404(rec, lead_api, pk):
    assert lead_api.get(f"/api/recommendations/{pk}/").status_code == 404


def test_malformed_json_is_400(rec, lead_api):
    response = lead_api.post(
        f"/api/recommendations/{rec.pk}/submit/", data="{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_json_list_instead_of_an_object_is_400(rec, lead_api):
    response = lead_api.post(f"/api/recommendations/{rec.pk}/submit/", [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"]


def test_filtering_by_another_organisations_inspection_or_user_is_400(rec, lead_api, mallory, other_org):
    foreign = RecommendationFactory(finding__inspection__organisation=other_org)

    by_inspection = lead_api.get("/api/recommendations/", {"inspection": foreign.finding.inspection_id})
    by_owner = lead_api.get("/api/recommendations/", {"owner": mallory.pk})

    assert (by_inspection.status_code, by_owner.status_code) == (400, 400)
    assert "inspection" in by_inspection.json()["errors"]
    assert "owner" in by_owner.json()["errors"]


@pytest.mark.parametrize("value", [1.5, "1.5", True, [1], {"id": 1}, "", -3, 2**70])
def test_an_id_must_be_a_whole_number_that_can_name_a_row(rec, olly, client_for, value):
    before = _state(rec)

    response = client_for(olly).post(
        "/api/updates/", {"recommendation": value, "narrative": "x", "version": 1}, format="json"
    )

    assert response.status_code == 400
    assert "recommendation" in response.json()["errors"]
    assert _state(rec) == before


def test_accepting_evidence_takes_no_fields(rec, rita, client_for):
    evidence = EvidenceFactory(recommendation=rec)

    response = client_for(rita).post(f"/api/evidence/{evidence.pk}/accept/", {"reviewed_by": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"reviewed_by": ["Unknown field."]}
    evidence.refresh_from_db()
    assert evidence.verdict == Evidence.Verdict.PENDING
