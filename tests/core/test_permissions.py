"""The one module that decides who may do what to which recommendation."""

import pytest

from tests.factories import RecommendationFactory
from tracker import permissions
from tracker.permissions import Action

ALL = set(Action)
OWNER_ACTIONS = {Action.VIEW, Action.UPDATE, Action.ADD_EVIDENCE, Action.SUBMIT}


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lead", ALL),
        ("rita", {Action.VIEW, Action.REVIEW}),
        ("olly", OWNER_ACTIONS),
        ("otto", set()),
        ("vic", {Action.VIEW}),
        ("mallory", set()),
    ],
)
def test_each_role_may_do_what_design_says(request, rec, persona, expected):
    user = request.getfixturevalue(persona)
    assert permissions.allowed_actions(user, rec) == expected


def test_an_inactive_owner_may_do_nothing(rec, olly):
    olly.is_active = False
    olly.save()
    assert permissions.allowed_actions(olly, rec) == set()


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
