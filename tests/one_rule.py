"""For tests that walk every role x state x action: one recommendation in each state the rules tell
apart, and one real workflow call per action with valid input, so only the rules can refuse it.
"""

import datetime as dt

from django.utils import timezone

from tests.factories import RecommendationFactory
from tracker import workflow
from tracker.models import Evidence, Finding, OutcomeMeasure, PlanAction, Recommendation
from tracker.permissions import Action


def note(rec, by, category=Evidence.Category.OUTCOME):
    return workflow.add_evidence(rec, by=by, kind="note", category=category, description="Audit", note="20 cases")


def submitted(rec, owner):
    workflow.post_update(rec, by=owner, narrative="Audit started.")
    note(rec, owner)
    return workflow.submit_for_assurance(rec, by=owner)


def build_states(org, owner, reviewer) -> dict[str, Recommendation]:
    """One recommendation of ``owner``'s in each state the guards tell apart, by name."""

    def make(**kw):
        return RecommendationFactory(finding__inspection__organisation=org, owner=owner, **kw)

    recs = {"not started": make()}
    recs["in progress, no evidence"] = make()
    workflow.post_update(recs["in progress, no evidence"], by=owner, narrative="Started.")
    output_only = recs["in progress, output only, cause of concern"] = make(finding__kind=Finding.Kind.CAUSE_OF_CONCERN)
    workflow.post_update(output_only, by=owner, narrative="Started.")
    note(output_only, owner, Evidence.Category.OUTPUT)
    recs["awaiting, pending"] = submitted(make(), owner)
    accepted = submitted(make(), owner)
    workflow.review_evidence(accepted.evidence.get(), by=reviewer, accept=True)
    recs["awaiting, accepted"] = accepted
    closed = submitted(make(), owner)
    workflow.review_evidence(closed.evidence.get(), by=reviewer, accept=True)
    recs["closed"] = workflow.close(closed, by=reviewer)
    # Issue 16: a cause of concern closes only on its outcomes (or a reviewer's override).
    for name, values in (
        ("no measure", None),
        ("measure below target", (80, 85, 95)),
        ("measure at target", (90, 92, 95)),
    ):
        coc = submitted(make(finding__kind=Finding.Kind.CAUSE_OF_CONCERN), owner)
        workflow.review_evidence(coc.evidence.get(), by=reviewer, accept=True)
        if values:
            measure = workflow.add_measure(coc, by=owner, supplier=owner, **MEASURE)
            for period, value in zip(last_periods(len(values)), values, strict=True):
                workflow.enter_measure_data(measure, by=owner, period=period, value=value)
        recs[f"awaiting, accepted, cause of concern, {name}"] = coc
    superseded = make()
    recs["superseded"] = workflow.supersede(superseded, by=_lead_of(org), replacement=make(), reason="Merged")
    for rec in recs.values():
        rec.refresh_from_db()
    return recs


MEASURE = {
    "name": "Missing children found within 24 hours",
    "definition": "Share of missing-child episodes closed within 24 hours, from the case system.",
    "unit": "%",
    "direction": "higher",
    "baseline_value": 61,
    "baseline_period": dt.date(2025, 1, 1),
    "target_value": 90,
    "target_date": dt.date(2027, 3, 31),
    "frequency": "monthly",
}


def last_periods(n: int, today: dt.date | None = None) -> list[dt.date]:
    """The first days of the ``n`` months before this one, oldest first."""
    first = (today or timezone.localdate()).replace(day=1)
    periods = []
    for _ in range(n):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        periods.append(first)
    return periods[::-1]


def _plan_action_of(rec: Recommendation) -> PlanAction:
    """An action owned by the recommendation's owner, so that its owner's say is the recommendation's."""
    return PlanAction.objects.create(
        recommendation=rec, description="Dip-sample 20 cases", owner=rec.owner, due_date=dt.date(2027, 1, 31)
    )


def _measure_of(rec: Recommendation) -> OutcomeMeasure:
    """A measure supplied by the recommendation's owner (written directly: only the call under test is a write)."""
    fields = {**MEASURE, "name": "Return interviews within 72 hours", "supplier": rec.owner}
    return OutcomeMeasure.objects.create(recommendation=rec, **fields)


def _lead_of(org):
    from tracker.models import User
    from tracker.permissions import Role

    return User.objects.filter(organisation=org, groups__name=str(Role.GOVERNANCE_LEAD), is_active=True).first()


def _pending_evidence(rec: Recommendation) -> Evidence:
    item = rec.evidence.filter(verdict=Evidence.Verdict.PENDING).first()
    # With no pending evidence any item will do: the rules refuse before the item matters.
    return item or rec.evidence.first() or Evidence(recommendation=rec)


def _replacement(rec: Recommendation) -> Recommendation:
    return RecommendationFactory(finding__inspection=rec.finding.inspection)


CALLS = {
    Action.UPDATE: lambda rec, by, spare: workflow.post_update(rec, by=by, narrative="Checked the audit."),
    Action.ADD_EVIDENCE: lambda rec, by, spare: workflow.add_evidence(
        rec, by=by, kind="note", category="outcome", description="Audit", note="Sampled 20 cases"
    ),
    Action.SUBMIT: lambda rec, by, spare: workflow.submit_for_assurance(rec, by=by),
    Action.REVIEW_EVIDENCE: lambda rec, by, spare: workflow.review_evidence(_pending_evidence(rec), by=by, accept=True),
    Action.CLOSE: lambda rec, by, spare: workflow.close(rec, by=by),
    Action.RETURN: lambda rec, by, spare: workflow.reject(rec, by=by, reason="Not enough"),
    Action.REOPEN: lambda rec, by, spare: workflow.reopen(rec, by=by, reason="Drift found"),
    Action.REASSIGN: lambda rec, by, spare: workflow.assign_owner(rec, by=by, owner=spare, reason="Handover"),
    Action.CHANGE_TARGET_DATE: lambda rec, by, spare: workflow.change_target_date(
        rec, by=by, target_date=dt.date(2027, 4, 30), reason="Agreed"
    ),
    Action.CHANGE_REVIEW_INTERVAL: lambda rec, by, spare: workflow.change_review_interval(
        rec, by=by, days=rec.review_interval_days + 1, reason="Monthly"
    ),
    Action.SUPERSEDE: lambda rec, by, spare: workflow.supersede(
        rec, by=by, replacement=_replacement(rec), reason="Merged"
    ),
    Action.EDIT: lambda rec, by, spare: workflow.edit_details(
        rec, by=by, title=rec.title + " (revised)", outcome_measure=""
    ),
    Action.SET_RAG: lambda rec, by, spare: workflow.set_rag(
        rec, by=by, rag="amber" if rec.rag == "red" else "red", reason="Partner data late"
    ),
    Action.MANAGE_PLAN: lambda rec, by, spare: workflow.add_plan_action(
        rec, by=by, description="Audit 20 cases", owner=spare, due_date=dt.date(2027, 1, 31)
    ),
    Action.UPDATE_PLAN_ACTION: lambda rec, by, spare: workflow.set_plan_action_status(
        _plan_action_of(rec), by=by, status="done"
    ),
    Action.MANAGE_MEASURES: lambda rec, by, spare: workflow.add_measure(
        rec, by=by, supplier=spare, **{**MEASURE, "name": "Repeat missing episodes"}
    ),
    Action.ENTER_MEASURE_DATA: lambda rec, by, spare: workflow.enter_measure_data(
        _measure_of(rec), by=by, period=last_periods(1)[0], value=93
    ),
    Action.SET_OUTCOME_GATED: lambda rec, by, spare: workflow.set_outcome_gated(rec, by=by, gated=True),
    Action.OVERRIDE_OUTCOME_GATE: lambda rec, by, spare: workflow.override_outcome_gate(
        rec, by=by, reason="Audit shows the change has held"
    ),
}
