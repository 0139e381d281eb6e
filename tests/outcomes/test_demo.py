"""Issue 16's demo data: marked as demo, through the workflow, once, with CC1 held open and CC2 closable."""

import pytest

from tests.factories import RecommendationFactory
from tracker import outcome_demo, policy, workflow
from tracker.permissions import Action

pytestmark = pytest.mark.django_db


def test_the_causes_of_concern_get_a_marked_demo_plan_and_measure_once(org, lead, olly, otto, rita):
    cc = {
        ref: RecommendationFactory(
            finding__inspection__organisation=org, finding__kind="cause_of_concern", finding__reference=ref, owner=olly
        )
        for ref in ("CC1", "CC2")
    }
    assert outcome_demo.add_demo_outcomes(lead, olly, otto) == 2
    assert outcome_demo.add_demo_outcomes(lead, olly, otto) == 0  # idempotent
    for rec in cc.values():
        assert rec.plan_actions.count() == 3 and rec.plan_actions.filter(status="done").count() == 1
        measure = rec.measures.get()
        assert measure.name.startswith("[Demo]") and "Demo example only" in measure.definition
        assert all(a.description.startswith("[Demo]") for a in rec.plan_actions.all())
    for rec in cc.values():
        rec = workflow.post_update(rec, by=olly, narrative="Audit").recommendation
        workflow.add_evidence(rec, by=olly, kind="note", category="outcome", description="Audit", note="x")
        workflow.submit_for_assurance(rec, by=olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    assert "2 of the last 3" in policy.decide(rita, cc["CC1"], Action.CLOSE).reason
    assert policy.decide(rita, cc["CC2"], Action.CLOSE).allowed
