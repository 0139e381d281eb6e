"""The API offers what tracker.policy allows and does exactly that: every role x state x action."""

import itertools

import pytest
from django.db import transaction

from tests.factories import RecommendationFactory, UserFactory
from tests.one_rule import MEASURE, _measure_of, _plan_action_of, build_states, last_periods
from tracker import policy, workflow
from tracker.models import Evidence, Recommendation
from tracker.permissions import Action, Role


def _call(api, action: Action, rec: Recommendation, spare, replacement):
    """The API request for ``action``, with valid input: only the rules may refuse it."""
    base = f"/api/recommendations/{rec.pk}/"
    version = {"version": rec.version}
    pending = rec.evidence.filter(verdict=Evidence.Verdict.PENDING).first() or rec.evidence.first()
    requests = {
        Action.VIEW: lambda: api.get(base),
        Action.UPDATE: lambda: api.post(
            "/api/updates/", {"recommendation": rec.pk, "narrative": "Checked.", **version}, format="json"
        ),
        Action.ADD_EVIDENCE: lambda: api.post(
            "/api/evidence/",
            {
                "recommendation": rec.pk,
                "kind": "note",
                "category": "outcome",
                "description": "Audit",
                "note": "Sampled 20 cases",
                **version,
            },
            format="json",
        ),
        Action.SUBMIT: lambda: api.post(base + "submit/", version, format="json"),
        Action.REVIEW_EVIDENCE: lambda: (
            api.post(f"/api/evidence/{pending.pk}/accept/", {}, format="json") if pending else None
        ),
        Action.CLOSE: lambda: api.post(base + "accept/", version, format="json"),
        Action.RETURN: lambda: api.post(base + "reject/", {"reason": "Not enough", **version}, format="json"),
        Action.REOPEN: lambda: api.post(base + "reopen/", {"reason": "Drift", **version}, format="json"),
        Action.REASSIGN: lambda: api.post(
            base + "assign-owner/", {"owner": spare.pk, "reason": "Handover", **version}, format="json"
        ),
        Action.CHANGE_TARGET_DATE: lambda: api.post(
            base + "change-target-date/", {"target_date": "2027-04-30", "reason": "Agreed", **version}, format="json"
        ),
        Action.CHANGE_REVIEW_INTERVAL: lambda: api.post(
            base + "change-review-interval/",
            {"review_interval_days": rec.review_interval_days + 1, "reason": "Monthly", **version},
            format="json",
        ),
        Action.SUPERSEDE: lambda: api.post(
            base + "supersede/", {"replacement": replacement.pk, "reason": "Merged", **version}, format="json"
        ),
        Action.EDIT: lambda: api.patch(base, {"title": rec.title + " (revised)", **version}, format="json"),
        Action.SET_RAG: lambda: api.post(
            base + "set-rag/",
            {"rag": "amber" if rec.rag == "red" else "red", "reason": "Late", **version},
            format="json",
        ),
        # Issue 16: the plan and measures (tracker/api/outcomes.py).
        Action.MANAGE_PLAN: lambda: api.post(
            "/api/plan-actions/",
            {"recommendation": rec.pk, "description": "Audit", "owner": spare.pk, "due_date": "2027-01-31"},
            format="json",
        ),
        Action.UPDATE_PLAN_ACTION: lambda: api.post(
            f"/api/plan-actions/{_plan_action_of(rec).pk}/status/", {"status": "done", "version": 1}, format="json"
        ),
        Action.MANAGE_MEASURES: lambda: api.post(
            "/api/measures/",
            {
                **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in MEASURE.items()},
                "name": "Repeat missing episodes",
                "recommendation": rec.pk,
                "supplier": spare.pk,
                **version,
            },
            format="json",
        ),
        Action.SET_OUTCOME_GATED: lambda: api.post(base + "outcome-gated/", {"gated": True, **version}, format="json"),
        Action.OVERRIDE_OUTCOME_GATE: lambda: api.post(
            base + "outcome-override/", {"reason": "Audit shows the change has held", **version}, format="json"
        ),
        Action.ENTER_MEASURE_DATA: lambda: api.post(
            f"/api/measures/{_measure_of(rec).pk}/data/",
            {"period": last_periods(1)[0].isoformat(), "value": "93"},
            format="json",
        ),
    }
    return requests[action]()


@pytest.mark.parametrize("persona", ["lead", "rita", "olly", "otto", "vic"])
def test_the_api_lists_and_does_exactly_what_policy_allows(
    request, client_for, org, lead, rita, olly, otto, vic, persona
):
    user = request.getfixturevalue(persona)
    api = client_for(user)
    spare = UserFactory(username="spare", organisation=org, roles=[Role.OWNER])
    states = build_states(org, olly, rita)
    replacement = RecommendationFactory(finding__inspection__organisation=org)
    for (name, original), action in itertools.product(states.items(), list(Action)):
        # Each action on each state from the same starting point: the savepoint undoes what it did.
        with transaction.atomic():
            rec = Recommendation.objects.get(pk=original.pk)
            _check(api, user, action, name, rec, spare, replacement)
            transaction.set_rollback(True)


def _check(api, user, action, name, rec, spare, replacement):
    decision = policy.decide(user, rec, action)
    listed = api.get(f"/api/recommendations/{rec.pk}/")
    if listed.status_code == 404:
        # Not visible to this person at all: nothing may be allowed, and every request is refused.
        assert not decision.allowed, name
        response = _call(api, action, rec, spare, replacement)
        assert response is None or response.status_code in (400, 404), (name, response.json())
        return
    assert (str(action) in listed.json()["allowed_actions"]) == decision.allowed, (name, action)
    response = _call(api, action, rec, spare, replacement)
    if response is None:  # no evidence to give a verdict on: nothing to ask
        assert not decision.allowed, name
        return
    if decision.allowed:
        assert response.status_code in (200, 201), (name, action, response.json())
    else:
        expected = 403 if decision.by_role else 409
        assert response.status_code == expected, (name, action, response.json())
        assert response.json()["detail"] == decision.reason, (name, action)


def test_a_closed_recommendation_refuses_a_new_owner_or_target_date(client_for, org, lead, rita, olly, otto):
    closed = build_states(org, olly, rita)["closed"]
    api = client_for(lead)
    version = {"version": closed.version, "reason": "Late change"}
    owner = api.post(f"/api/recommendations/{closed.pk}/assign-owner/", {"owner": otto.pk, **version}, format="json")
    date = api.post(
        f"/api/recommendations/{closed.pk}/change-target-date/", {"target_date": "2027-04-30", **version}, format="json"
    )
    assert (owner.status_code, date.status_code) == (409, 409)
    closed.refresh_from_db()
    assert (closed.owner, closed.target_date, closed.version) == (olly, None, version["version"])


def test_a_viewer_cannot_be_made_an_owner_through_the_api(client_for, rec, lead, vic):
    before = rec.version
    response = client_for(lead).post(
        f"/api/recommendations/{rec.pk}/assign-owner/",
        {"owner": vic.pk, "reason": "x", "version": before},
        format="json",
    )
    assert response.status_code == 400
    assert "Owner or Governance lead role" in response.json()["detail"]
    rec.refresh_from_db()
    assert (rec.owner.username, rec.version) == ("olly", before)


def test_a_null_target_date_is_refused_and_removal_is_its_own_action(client_for, rec, lead):
    api = client_for(lead)
    url = f"/api/recommendations/{rec.pk}/"
    set_date = api.post(
        url + "change-target-date/", {"target_date": "2027-04-30", "version": rec.version}, format="json"
    )
    assert set_date.status_code == 200
    version = set_date.json()["version"]
    cleared = api.post(url + "change-target-date/", {"target_date": None, "version": version}, format="json")
    assert cleared.status_code == 400
    impossible = api.post(url + "change-target-date/", {"target_date": "2027-02-31", "version": version}, format="json")
    assert impossible.status_code == 400
    assert "target_date" in impossible.json()["errors"]
    assert api.get(url).json()["target_date"] == "2027-04-30"
    no_reason = api.post(url + "remove-target-date/", {"version": version}, format="json")
    assert no_reason.status_code == 400
    removed = api.post(
        url + "remove-target-date/", {"version": version, "reason": "Replaced by new plan"}, format="json"
    )
    assert removed.status_code == 200
    assert removed.json()["target_date"] is None


def test_the_list_keeps_four_eyes_for_whoever_did_the_work_and_no_one_else(client_for, org, lead, rita):
    """The list asks four eyes of the rows only for someone who ever touched an item (policy.with_facts); a
    lead who did the work may not assure it, a reviewer who never touched anything may."""
    rec = RecommendationFactory(finding__inspection__organisation=org, finding__kind="recommendation")
    workflow.post_update(rec, by=lead, narrative="Started.")
    workflow.add_evidence(
        Recommendation.objects.get(pk=rec.pk), by=lead, kind="note", category="outcome", description="Audit", note="x"
    )
    workflow.submit_for_assurance(Recommendation.objects.get(pk=rec.pk), by=lead)
    rec = Recommendation.objects.get(pk=rec.pk)
    for user, may in ((lead, False), (rita, True)):
        listed = {row["id"]: row for row in client_for(user).get("/api/recommendations/").json()["results"]}
        assert (str(Action.REVIEW_EVIDENCE) in listed[rec.pk]["allowed_actions"]) is may, user
        assert policy.decide(user, rec, Action.REVIEW_EVIDENCE).allowed is may, user
