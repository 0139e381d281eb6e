"""For tests that walk every role x state x action: one recommendation in each state the rules tell
apart, and one real workflow call per action with valid input, so only the rules can refuse it.
"""

import datetime as dt

from tests.factories import RecommendationFactory
from tracker import workflow
from tracker.models import Evidence, Finding, Recommendation
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
    superseded = make()
    recs["superseded"] = workflow.supersede(superseded, by=_lead_of(org), replacement=make(), reason="Merged")
    for rec in recs.values():
        rec.refresh_from_db()
    return recs


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
}
