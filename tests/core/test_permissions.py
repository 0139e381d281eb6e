"""The role half of the rule: who may ever do what to which recommendation (the state half is tracker.policy)."""

import pytest

from tests.factories import RecommendationFactory, UserFactory
from tracker import permissions
from tracker.permissions import Action, Role

ALL = set(Action)
# The plan and its measures (issue 16): the accountable owner manages them; an action's owner and a
# measure's supplier act on their own item only (tests/outcomes/test_rules.py).
PLANNING = {Action.MANAGE_PLAN, Action.UPDATE_PLAN_ACTION, Action.MANAGE_MEASURES, Action.ENTER_MEASURE_DATA}
OWNER_ACTIONS = {Action.VIEW, Action.UPDATE, Action.ADD_EVIDENCE, Action.SUBMIT, Action.SET_RAG, *PLANNING}
ASSURANCE = {Action.VIEW, Action.REVIEW_EVIDENCE, Action.CLOSE, Action.RETURN, Action.OVERRIDE_OUTCOME_GATE}


def role_allowed(user, rec):
    return {action for action in Action if permissions.role_allows(user, action, rec)}


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lead", ALL),
        ("rita", ASSURANCE),
        ("olly", OWNER_ACTIONS),
        ("otto", set()),
        ("vic", {Action.VIEW}),
        ("mallory", set()),
    ],
)
def test_each_role_may_do_what_design_says(request, rec, persona, expected):
    user = request.getfixturevalue(persona)
    assert role_allowed(user, rec) == expected


def test_an_inactive_owner_may_do_nothing(rec, olly):
    olly.is_active = False
    olly.save()
    assert role_allowed(olly, rec) == set()


def test_eligible_owners_are_active_owners_and_leads_of_the_organisation(org, lead, rita, olly, otto, vic, mallory):
    gone = UserFactory(organisation=org, roles=[Role.OWNER], is_active=False)
    assert set(permissions.eligible_owners(org.pk)) == {lead, olly, otto}
    assert gone not in permissions.eligible_owners(org.pk)
    assert not permissions.eligible_owners(None).exists()


def test_owners_list_only_what_they_own_and_nobody_lists_another_organisation(rec, olly, otto, rita, mallory, org):
    mine_too = RecommendationFactory(finding__inspection__organisation=org, owner=otto)
    assert list(permissions.visible_recommendations(olly)) == [rec]
    assert set(permissions.visible_recommendations(rita)) == {rec, mine_too}
    assert not permissions.visible_recommendations(mallory).exists()
    assert not permissions.visible_inspections(mallory).exists()


def test_a_user_without_a_role_sees_nothing(rec, org):
    from tests.factories import UserFactory

    nobody = UserFactory(organisation=org)
    assert not permissions.visible_recommendations(nobody).exists()
    assert not permissions.visible_inspections(nobody).exists()


def test_an_action_owner_sees_their_own_action_but_not_the_recommendation(rec, olly, otto, rita, mallory):
    import datetime as dt

    from tracker.models import PlanAction

    theirs = PlanAction.objects.create(recommendation=rec, description="x", owner=otto, due_date=dt.date(2027, 1, 1))
    mine = PlanAction.objects.create(recommendation=rec, description="y", owner=olly, due_date=dt.date(2027, 1, 1))
    assert list(permissions.visible_plan_actions(otto)) == [theirs]
    assert set(permissions.visible_plan_actions(olly)) == {theirs, mine}
    assert set(permissions.visible_plan_actions(rita)) == {theirs, mine}
    assert not permissions.visible_plan_actions(mallory).exists()
    assert not permissions.visible_recommendations(otto).exists()
