"""The one answer to "what may this person do to this recommendation now": role and state together."""

import datetime as dt
import itertools

import pytest
from django.db import transaction

from tests.factories import RecommendationFactory, UserFactory
from tests.one_rule import CALLS, build_states, submitted
from tracker import policy, workflow
from tracker.models import Evidence, Recommendation
from tracker.permissions import Action, NotPermitted, Role

Status = Recommendation.Status


def note(rec, by, category=Evidence.Category.OUTCOME):
    return workflow.add_evidence(rec, by=by, kind="note", category=category, description="Audit", note="20 cases")


class TestFourEyesByWhoDidTheWork:
    def test_a_lead_who_did_the_work_cannot_close_it_after_handing_it_to_someone_else(self, org, lead, otto, rita):
        """The walk-around found in the probe: own it, evidence it, submit it, reassign it, then close it."""
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=None)
        workflow.assign_owner(rec, by=lead, owner=lead)
        rec = submitted(rec, lead)
        workflow.assign_owner(rec, by=lead, owner=otto, reason="Handing over")
        item = rec.evidence.get()

        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.review_evidence(item, by=lead, accept=True)
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.close(rec, by=lead)
        assert not policy.decide(lead, rec, Action.CLOSE)
        assert not policy.decide(lead, rec, Action.REVIEW_EVIDENCE)

        # Someone who did none of the work may assure it.
        workflow.review_evidence(item, by=rita, accept=True)
        workflow.close(rec, by=rita)
        rec.refresh_from_db()
        assert rec.status == Status.CLOSED

    def test_a_former_owner_who_never_submitted_is_still_ruled_out(self, org, lead, olly, rita):
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=None)
        workflow.assign_owner(rec, by=lead, owner=lead)
        workflow.assign_owner(rec, by=lead, owner=olly)
        rec = submitted(rec, olly)
        assert lead.pk in policy.involved_user_ids(rec)
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.close(rec, by=lead)

    def test_a_reviewer_who_added_evidence_cannot_give_any_evidence_a_verdict(self, org, olly, rita, lead):
        rita.groups.add(*lead.groups.all())  # a lead-and-reviewer may add evidence
        rita._tracker_roles = None
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly)
        workflow.post_update(rec, by=olly, narrative="Started.")
        note(rec, rita)
        theirs = note(rec, olly)
        workflow.submit_for_assurance(rec, by=olly)
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.review_evidence(theirs, by=rita, accept=True)

    def test_reopening_starts_a_new_round_of_who_did_the_work(self, org, lead, olly, otto, rita):
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=otto)
        rec = submitted(rec, otto)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        workflow.close(rec, by=rita)
        workflow.reopen(rec, by=lead, reason="Re-audit found drift")
        workflow.assign_owner(rec, by=lead, owner=olly, reason="New owner")
        rec.refresh_from_db()
        # otto owned it when it was reopened, so otto is still in this round; rita only reviewed.
        assert policy.involved_user_ids(rec) == {otto.pk, olly.pk}


class TestClosedAndSuperseded:
    @pytest.fixture
    def closed(self, rec, olly, rita):
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        return workflow.close(rec, by=rita)

    @pytest.mark.parametrize(
        ("persona", "expected"),
        [
            ("lead", {Action.VIEW, Action.REOPEN}),
            ("rita", {Action.VIEW}),
            ("olly", {Action.VIEW}),
            ("otto", set()),
            ("vic", {Action.VIEW}),
            ("mallory", set()),
        ],
    )
    def test_a_closed_recommendation_offers_nothing_but_reopen_to_a_lead(self, request, closed, persona, expected):
        assert policy.allowed_actions(request.getfixturevalue(persona), closed) == expected

    def test_a_closed_recommendation_keeps_its_owner_and_dates(self, closed, lead, otto):
        with pytest.raises(workflow.WorkflowError, match="closed"):
            workflow.assign_owner(closed, by=lead, owner=otto, reason="x")
        with pytest.raises(workflow.WorkflowError, match="closed"):
            workflow.change_target_date(closed, by=lead, target_date=dt.date(2027, 4, 30), reason="x")
        with pytest.raises(workflow.WorkflowError, match="closed"):
            workflow.edit_details(closed, by=lead, title="New words", outcome_measure="")
        closed.refresh_from_db()
        assert closed.owner.username == "olly" and closed.target_date is None

    def test_a_superseded_recommendation_offers_nothing_at_all(self, rec, lead, org):
        replacement = RecommendationFactory(finding__inspection=rec.finding.inspection)
        workflow.supersede(rec, by=lead, replacement=replacement, reason="Merged")
        assert policy.allowed_actions(lead, rec) == {Action.VIEW}


class TestTheRowAsStored:
    def test_permission_is_decided_on_the_locked_row_not_the_callers_copy(self, rec, lead, olly, otto):
        stale_copy = Recommendation.objects.get(pk=rec.pk)
        workflow.assign_owner(rec, by=lead, owner=otto, reason="Handover")
        with pytest.raises(NotPermitted):
            workflow.post_update(stale_copy, by=olly, narrative="Still mine?", expected_version=rec.version)
        assert not rec.updates.exists()

    def test_a_caller_that_sends_no_version_is_still_protected_from_a_change_made_in_between(self, rec, lead):
        read_earlier = Recommendation.objects.get(pk=rec.pk)
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 4, 30))
        with pytest.raises(workflow.StaleRecommendation):
            workflow.change_target_date(read_earlier, by=lead, target_date=dt.date(2027, 3, 31), reason="Slipped")
        rec.refresh_from_db()
        assert rec.target_date == dt.date(2027, 4, 30)


class TestCreating:
    def test_only_a_lead_of_the_findings_organisation_creates_recommendations(self, org, lead, rita, mallory):
        from tests.factories import FindingFactory

        finding = FindingFactory(inspection__organisation=org)
        for outsider in (rita, mallory):
            with pytest.raises(NotPermitted):
                workflow.create_recommendation(finding, by=outsider)
        assert not Recommendation.objects.filter(finding=finding).exists()
        assert workflow.create_recommendation(finding, by=lead).finding == finding

    def test_an_interval_beyond_the_bound_is_refused(self, org, lead):
        from tests.factories import FindingFactory

        with pytest.raises(workflow.InvalidInput, match="from 1 to 366"):
            workflow.create_recommendation(FindingFactory(inspection__organisation=org), by=lead, interval_days=999999)


class TestOwnersAndDates:
    @pytest.mark.parametrize("persona", ["rita", "vic"])
    def test_only_eligible_owners_can_be_given_a_recommendation(self, request, rec, lead, persona):
        with pytest.raises(workflow.InvalidInput, match="Owner or Governance lead role"):
            workflow.assign_owner(rec, by=lead, owner=request.getfixturevalue(persona))
        rec.refresh_from_db()
        assert rec.owner.username == "olly"

    def test_an_empty_target_date_never_clears_an_agreed_one(self, rec, lead):
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 4, 30))
        version = rec.version
        with pytest.raises(workflow.InvalidInput, match="remove it"):
            workflow.change_target_date(rec, by=lead, target_date=None, reason="typo")
        rec.refresh_from_db()
        assert (rec.target_date, rec.version) == (dt.date(2027, 4, 30), version)

    def test_removing_a_target_date_is_explicit_and_needs_a_reason(self, rec, lead):
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 4, 30))
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.remove_target_date(rec, by=lead, reason=" ")
        workflow.remove_target_date(rec, by=lead, reason="Plan replaced by the new strategy")
        rec.refresh_from_db()
        assert rec.target_date is None
        assert rec.events.last().reason == "Plan replaced by the new strategy"


def test_lists_decide_from_annotations_exactly_as_a_single_row_decides_from_queries(org, lead, rita, olly, vic):
    """The API list annotates the facts (no query per row); the page queries them. Both must agree."""
    build_states(org, olly, rita)
    for user in (lead, rita, olly, vic):
        annotated = policy.with_facts(Recommendation.objects.with_related(), user)
        for row in annotated:
            fresh = Recommendation.objects.with_related().get(pk=row.pk)
            assert policy.decisions(user, row) == policy.decisions(user, fresh), (user, row)


def test_a_whole_row_decides_exactly_as_each_action_one_by_one(org, lead, rita, olly, otto, vic, mallory):
    """``decisions`` asks the role half once per row shape and keeps it on the user; ``decide`` asks it each
    time. The same user objects go through every row (owned, not owned, unowned, another organisation's),
    then lose a role and become inactive: the kept answers must never be stale."""
    build_states(org, olly, rita)
    RecommendationFactory(finding__inspection__organisation=mallory.organisation, owner=mallory)
    rows = list(policy.with_facts(Recommendation.objects.with_related(), lead))
    people = [lead, rita, olly, otto, vic, mallory]

    def agree():
        for user, row in itertools.product(people, rows):
            whole = policy.decisions(user, row)
            assert whole == {action: policy.decide(user, row, action) for action in Action}, (user, row)

    agree()
    lead.groups.clear()
    lead._tracker_roles = None
    olly.is_active = False
    agree()
    assert not any(d.allowed for d in policy.decisions(olly, rows[0]).values())


def test_every_action_has_a_state_rule_and_a_role_message():
    assert set(policy._STATE_RULES) == set(Action)


@pytest.mark.parametrize("persona", ["lead", "rita", "olly", "otto", "vic"])
def test_the_workflow_refuses_exactly_what_policy_refuses(request, org, lead, rita, olly, otto, vic, persona):
    """Every role x state x action: policy says allowed iff the workflow function does it."""
    user = request.getfixturevalue(persona)
    spare = UserFactory(username="spare", organisation=org, roles=[Role.OWNER])
    states = build_states(org, olly, rita)
    for (name, original), action in itertools.product(states.items(), list(Action)):
        if action == Action.VIEW:
            continue  # viewing is not a write
        with transaction.atomic():  # each from the same starting point
            rec = Recommendation.objects.with_related().get(pk=original.pk)
            decision = policy.decide(user, rec, action)
            try:
                CALLS[action](rec, user, spare)
            except (workflow.WorkflowError, NotPermitted) as exc:
                if isinstance(exc, workflow.InvalidInput):
                    raise AssertionError(f"{name}: the test's own input was refused: {exc}") from exc
                assert not decision.allowed, f"{name}: policy allowed {action} but the workflow refused: {exc}"
                assert str(exc) == decision.reason, (name, action)
            else:
                assert decision.allowed, f"{name}: policy refused {action} ({decision.reason}) but the workflow did it"
            transaction.set_rollback(True)
