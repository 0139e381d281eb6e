"""Issue 16's rules: who plans, who updates an action, who supplies data, and closure following outcomes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import RecommendationFactory, UserFactory
from tests.one_rule import MEASURE, last_periods, submitted
from tracker import outcomes, policy, workflow
from tracker.models import Finding, PlanAction, Recommendation, RecommendationEvent
from tracker.permissions import Action, NotPermitted, Role

Event = RecommendationEvent.Action
DUE = dt.date(2027, 1, 31)


@pytest.fixture
def coc(org, olly, rita):
    """Olly's cause of concern, submitted with accepted outcome evidence: only the outcome gate is left."""
    rec = submitted(
        RecommendationFactory(finding__inspection__organisation=org, finding__kind="cause_of_concern", owner=olly), olly
    )
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    rec.refresh_from_db()
    return rec


def _measure(rec, by, **kw):
    return workflow.add_measure(rec, by=by, supplier=kw.pop("supplier", by), **{**MEASURE, **kw})


def _data(measure, by, values, periods=None):
    for period, value in zip(periods or last_periods(len(values)), values, strict=True):
        workflow.enter_measure_data(measure, by=by, period=period, value=value)


class TestClosureFollowsOutcomes:
    def test_a_cause_of_concern_without_measures_stays_open_and_says_so(self, coc, rita):
        with pytest.raises(workflow.WorkflowError, match="no outcome measure yet"):
            workflow.close(coc, by=rita)

    def test_the_refusal_names_the_measure_below_target(self, coc, olly, rita):
        measure = _measure(coc, olly)
        _data(measure, olly, [80, 91, 95])
        _measure(coc, olly, name="Return interviews within 72 hours", target_value=50)
        _data(coc.measures.get(name__startswith="Return"), olly, [60, 70, 80])
        decision = policy.decide(rita, coc, Action.CLOSE)
        assert not decision.allowed
        assert "“Missing children found within 24 hours” met its target (at least 90%) in 2 of the last 3" in (
            decision.reason
        )
        assert "Return interviews" not in decision.reason

    def test_three_periods_at_target_let_a_reviewer_who_did_none_of_the_work_close_it(self, coc, olly, rita):
        _data(_measure(coc, olly), olly, [90, 92, 95])
        workflow.close(coc, by=rita)
        coc.refresh_from_db()
        assert coc.status == Recommendation.Status.CLOSED

    def test_only_the_latest_periods_count(self, coc, olly, rita):
        _data(_measure(coc, olly), olly, [95, 95, 95, 70], last_periods(4))
        assert "in 2 of the last 3" in policy.decide(rita, coc, Action.CLOSE).reason

    def test_a_missing_period_breaks_the_run(self, coc, olly, rita):
        periods = last_periods(4)
        _data(_measure(coc, olly), olly, [95, 95, 95], [periods[0], periods[2], periods[3]])
        assert "has no value for" in policy.decide(rita, coc, Action.CLOSE).reason

    def test_lower_is_better_when_the_measure_says_so(self, coc, olly, rita):
        _data(_measure(coc, olly, direction="lower", target_value=10), olly, [10, 8, 9])
        assert policy.decide(rita, coc, Action.CLOSE).allowed

    def test_the_number_of_periods_is_a_setting(self, coc, olly, rita, settings):
        settings.OUTCOME_PERIODS_REQUIRED = 2
        _data(_measure(coc, olly), olly, [70, 90, 95])
        assert policy.decide(rita, coc, Action.CLOSE).allowed

    def test_a_recommendation_that_is_not_gated_closes_as_before(self, org, olly, rita):
        rec = submitted(RecommendationFactory(finding__inspection__organisation=org, owner=olly), olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        assert policy.decide(rita, rec, Action.CLOSE).allowed

    def test_whoever_entered_the_data_did_the_work(self, coc, olly, lead, rita):
        _data(_measure(coc, olly, supplier=lead), lead, [90, 92, 95])
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.close(coc, by=lead)
        workflow.close(coc, by=rita)


class TestOverride:
    def test_a_reviewer_overrides_with_a_reason_and_then_it_may_close(self, coc, rita):
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.override_outcome_gate(coc, by=rita, reason="  ")
        workflow.override_outcome_gate(coc, by=rita, reason="Audit shows sustained change; data system replaced")
        assert coc.events.filter(action=Event.OUTCOME_GATE_OVERRIDDEN).get().reason.startswith("Audit shows")
        workflow.close(coc, by=rita)

    def test_four_eyes_applies_to_the_override(self, coc, olly, lead):
        lead.groups.add(*UserFactory(username="r2", organisation=coc.organisation, roles=[Role.REVIEWER]).groups.all())
        lead._tracker_roles = None
        workflow.assign_owner(coc, by=lead, owner=lead, reason="Taking it over")
        coc.refresh_from_db()
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.override_outcome_gate(coc, by=lead, reason="Good enough")

    def test_an_owner_cannot_override(self, coc, olly):
        with pytest.raises(NotPermitted):
            workflow.override_outcome_gate(coc, by=olly, reason="Good enough")

    def test_reopening_clears_the_override(self, coc, rita, lead, olly):
        workflow.override_outcome_gate(coc, by=rita, reason="Sustained change")
        workflow.close(coc, by=rita)
        workflow.reopen(coc, by=lead, reason="Drift found")
        coc = submitted(coc, olly)
        workflow.review_evidence(coc.evidence.filter(verdict="pending").get(), by=rita, accept=True)
        assert "no outcome measure yet" in policy.decide(rita, coc, Action.CLOSE).reason

    def test_no_override_when_the_measures_are_at_target(self, coc, olly, rita):
        _data(_measure(coc, olly), olly, [90, 92, 95])
        assert "at target" in policy.decide(rita, coc, Action.OVERRIDE_OUTCOME_GATE).reason


class TestGating:
    def test_a_lead_marks_a_recommendation_outcome_gated_and_it_then_closes_only_on_outcomes(
        self, org, olly, lead, rita
    ):
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly)
        with pytest.raises(NotPermitted):
            workflow.set_outcome_gated(rec, by=olly, gated=True)
        workflow.set_outcome_gated(rec, by=lead, gated=True)
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        assert "no outcome measure yet" in policy.decide(rita, rec, Action.CLOSE).reason

    def test_taking_gating_away_needs_a_reason(self, rec, lead):
        workflow.set_outcome_gated(rec, by=lead, gated=True)
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.set_outcome_gated(rec, by=lead, gated=False)
        workflow.set_outcome_gated(rec, by=lead, gated=False, reason="Output-only recommendation")
        rec.refresh_from_db()
        assert not rec.outcome_gated

    def test_a_cause_of_concern_is_always_gated(self, coc, lead):
        with pytest.raises(workflow.WorkflowError, match="always closes on its outcomes"):
            workflow.set_outcome_gated(coc, by=lead, gated=False, reason="x")
        assert outcomes.is_gated(coc)


class TestPlan:
    def test_the_owner_plans_and_an_action_owner_updates_only_their_own(self, rec, olly, otto, vic):
        theirs = workflow.add_plan_action(rec, by=olly, description="Train call handlers", owner=otto, due_date=DUE)
        mine = workflow.add_plan_action(rec, by=olly, description="Audit 20 cases", owner=olly, due_date=DUE)
        workflow.set_plan_action_status(theirs, by=otto, status="done", evidence_link="https://intranet.example/x")
        with pytest.raises(NotPermitted, match="action's owner"):
            workflow.set_plan_action_status(mine, by=otto, status="done")
        with pytest.raises(NotPermitted):
            workflow.add_plan_action(rec, by=otto, description="Mine now", owner=otto, due_date=DUE)
        with pytest.raises(NotPermitted):
            workflow.set_plan_action_status(mine, by=vic, status="done")
        theirs.refresh_from_db()
        assert (theirs.status, theirs.completed_at is not None) == ("done", True)

    def test_an_action_owner_must_be_an_eligible_owner(self, rec, olly, vic, mallory):
        for person in (vic, mallory):
            with pytest.raises(workflow.InvalidInput, match="cannot own an action"):
                workflow.add_plan_action(rec, by=olly, description="x", owner=person, due_date=DUE)
        assert not rec.plan_actions.exists()

    def test_blocked_needs_a_reason(self, rec, olly):
        item = workflow.add_plan_action(rec, by=olly, description="Audit", owner=olly, due_date=DUE)
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.set_plan_action_status(item, by=olly, status="blocked", blocked_reason=" ")
        workflow.set_plan_action_status(item, by=olly, status="blocked", blocked_reason="No analyst until March")
        assert rec.events.filter(action=Event.PLAN_ACTION_STATUS).get().reason == "No analyst until March"

    def test_moving_the_due_date_needs_a_reason_and_a_stale_copy_is_refused(self, rec, olly, otto, lead):
        item = workflow.add_plan_action(rec, by=olly, description="Audit", owner=olly, due_date=DUE)
        stale = PlanAction.objects.get(pk=item.pk)
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.change_plan_action(item, by=lead, description="Audit", owner=olly, due_date=DUE.replace(day=1))
        workflow.change_plan_action(
            item, by=lead, description="Audit", owner=otto, due_date=DUE.replace(day=1), reason="Analyst off sick"
        )
        with pytest.raises(workflow.StaleRecommendation):
            workflow.set_plan_action_status(stale, by=olly, status="done")
        event = rec.events.get(action=Event.PLAN_ACTION_DUE_DATE)
        assert (event.old_value, event.new_value, event.reason) == ("2027-01-31", "2027-01-01", "Analyst off sick")

    def test_a_closed_recommendation_takes_no_plan_changes(self, rec, olly, rita):
        item = workflow.add_plan_action(rec, by=olly, description="Audit", owner=olly, due_date=DUE)
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        workflow.close(rec, by=rita)
        with pytest.raises(workflow.WorkflowError, match="closed"):
            workflow.set_plan_action_status(item, by=olly, status="done")


class TestMeasureData:
    def test_the_supplier_enters_data_and_another_owner_cannot(self, rec, olly, otto, lead):
        measure = _measure(rec, lead, supplier=otto)
        workflow.enter_measure_data(measure, by=otto, period=last_periods(1)[0], value="91.5")
        other = UserFactory(username="owen", organisation=rec.organisation, roles=[Role.OWNER])
        with pytest.raises(NotPermitted, match="supplier"):
            workflow.enter_measure_data(measure, by=other, period=last_periods(2)[0], value=1)
        assert measure.data_points.get().value == Decimal("91.5")

    def test_a_period_is_entered_once_and_never_in_the_future(self, rec, olly):
        measure = _measure(rec, olly)
        workflow.enter_measure_data(measure, by=olly, period=last_periods(1)[0].replace(day=17), value=90)
        assert measure.data_points.get().period == last_periods(1)[0]
        with pytest.raises(workflow.InvalidInput, match="correct that value"):
            workflow.enter_measure_data(measure, by=olly, period=last_periods(1)[0], value=91)
        with pytest.raises(workflow.InvalidInput, match="has not started"):
            workflow.enter_measure_data(measure, by=olly, period=dt.date(2099, 1, 1), value=91)

    @pytest.mark.parametrize("value", ["", "ninety", "1e400", "12345678901", "1.23456"])
    def test_a_value_that_is_not_a_number_changes_nothing(self, rec, olly, value):
        measure = _measure(rec, olly)
        with pytest.raises(workflow.InvalidInput):
            workflow.enter_measure_data(measure, by=olly, period=last_periods(1)[0], value=value)
        assert not measure.data_points.exists()

    def test_a_correction_needs_a_reason_and_keeps_the_old_value(self, rec, olly):
        measure = _measure(rec, olly)
        point = workflow.enter_measure_data(measure, by=olly, period=last_periods(1)[0], value=90)
        with pytest.raises(workflow.InvalidInput, match="reason"):
            workflow.correct_measure_data(point, by=olly, value=85, note="", reason="")
        workflow.correct_measure_data(point, by=olly, value=85, note="", reason="Late returns counted")
        point.refresh_from_db()
        assert (point.value, point.correction_reason, point.version) == (85, "Late returns counted", 2)
        assert sorted(point.history.values_list("value", flat=True)) == [85, 90]
        event = rec.events.get(action=Event.MEASURE_DATA_CORRECTED)
        assert event.reason == "Late returns counted" and event.new_value == "85"

    def test_a_baseline_period_is_the_start_of_its_quarter(self, rec, olly):
        measure = _measure(rec, olly, frequency="quarterly", baseline_period=dt.date(2025, 5, 20))
        assert measure.baseline_period == dt.date(2025, 4, 1)


def test_planning_rights_follow_the_recommendation_owner_and_leads(rec, lead, olly, otto, rita, vic):
    allowed = {
        user.username: policy.decide(user, rec, Action.MANAGE_PLAN).allowed for user in (lead, olly, otto, rita, vic)
    }
    assert allowed == {"lead": True, "olly": True, "otto": False, "rita": False, "vic": False}
    item = PlanAction(recommendation=rec, owner=otto, description="x", due_date=DUE)
    assert policy.decide(otto, rec, Action.UPDATE_PLAN_ACTION, item=item).allowed
    assert not policy.decide(otto, rec, Action.UPDATE_PLAN_ACTION).allowed


def test_a_cause_of_concern_from_the_factory_is_gated(org):
    rec = RecommendationFactory(finding__inspection__organisation=org, finding__kind=Finding.Kind.CAUSE_OF_CONCERN)
    assert outcomes.is_gated(rec)


def _gated(org, olly, rita, n: int) -> None:
    """``n`` of Olly's causes of concern awaiting assurance, evidence accepted, a measure below target."""
    for _ in range(n):
        rec = submitted(
            RecommendationFactory(finding__inspection__organisation=org, finding__kind="cause_of_concern", owner=olly),
            olly,
        )
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        _data(_measure(rec, olly), olly, [80, 90, 95])


def test_an_api_list_decides_closure_of_gated_rows_without_a_query_per_row(org, olly, rita):
    def decide_all() -> int:
        with CaptureQueriesContext(connection) as captured:
            rows = list(policy.with_facts(Recommendation.objects.with_related(), rita))
            policy.read_measures_together(rows)
            reasons = [policy.decide(rita, row, Action.CLOSE).reason for row in rows]
        assert all("in 2 of the last 3" in reason for reason in reasons)
        return len(captured)

    _gated(org, olly, rita, 2)
    at_2 = decide_all()
    _gated(org, olly, rita, 6)
    assert decide_all() == at_2


def test_the_api_list_reads_the_measures_of_its_gated_rows_in_one_go(client, org, olly, rita):
    """The list's rows read their measures together (policy.read_measures_together) when the first is asked:
    the same queries for 2 gated rows awaiting assurance as for 8, and the refusal names the measure."""
    client.force_login(rita)

    def listed() -> int:
        with CaptureQueriesContext(connection) as captured:
            rows = client.get("/api/recommendations/").json()["results"]
        assert all("in 2 of the last 3" in row["blocked_actions"][Action.CLOSE] for row in rows)
        return len(captured)

    _gated(org, olly, rita, 2)
    at_2 = listed()
    _gated(org, olly, rita, 6)
    assert listed() == at_2
