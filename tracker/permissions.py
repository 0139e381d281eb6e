"""Who may do what. The admin, the staff pages and the API all ask this module.

Roles are Django groups; object rules sit on top: everybody is confined to their own
organisation, and an owner acts only on what they own.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from tracker.models import Evidence, Finding, Inspection, Organisation, Recommendation, Reminder

if TYPE_CHECKING:
    from tracker.models import User


class Role(StrEnum):
    GOVERNANCE_LEAD = "Governance lead"
    REVIEWER = "Assurance reviewer"
    OWNER = "Owner"
    VIEWER = "Viewer"


class Action(StrEnum):
    VIEW = "view"
    UPDATE = "update"  # post a progress update
    ADD_EVIDENCE = "add_evidence"
    SUBMIT = "submit"
    REVIEW_EVIDENCE = "review_evidence"  # accept or reject a piece of evidence
    CLOSE = "close"  # accept the submission and close
    RETURN = "return"  # reject the submission: back to the owner, in progress
    REOPEN = "reopen"
    REASSIGN = "reassign"
    CHANGE_TARGET_DATE = "change_target_date"
    CHANGE_REVIEW_INTERVAL = "change_review_interval"
    SUPERSEDE = "supersede"
    EDIT = "edit"  # the wording of the recommendation and its outcome measure
    SET_RAG = "set_rag"  # the RAG rating, with a reason, on its own (no progress update needed)


class NotPermitted(PermissionDenied):
    """The user may not do this. The message says so in words a user can act on."""


_MESSAGES = {
    Action.VIEW: "You cannot see this recommendation.",
    Action.UPDATE: "Only the owner or a governance lead can post progress updates on this recommendation.",
    Action.ADD_EVIDENCE: "Only the owner or a governance lead can add evidence to this recommendation.",
    Action.SUBMIT: "Only the owner or a governance lead can submit this recommendation for assurance.",
    Action.REVIEW_EVIDENCE: "Only an assurance reviewer or a governance lead can accept or reject evidence.",
    Action.CLOSE: "Only an assurance reviewer or a governance lead can close a recommendation.",
    Action.RETURN: "Only an assurance reviewer or a governance lead can return a submission to its owner.",
    Action.REOPEN: "Only a governance lead can reopen a recommendation.",
    Action.REASSIGN: "Only a governance lead can assign owners.",
    Action.CHANGE_TARGET_DATE: "Only a governance lead can change target dates.",
    Action.CHANGE_REVIEW_INTERVAL: "Only a governance lead can change review intervals.",
    Action.SUPERSEDE: "Only a governance lead can supersede a recommendation.",
    Action.EDIT: "Only a governance lead can change a recommendation's title or outcome measure.",
    Action.SET_RAG: "Only the owner or a governance lead can set the RAG rating of this recommendation.",
}
assert set(_MESSAGES) == set(Action)

_ASSURANCE = (Action.REVIEW_EVIDENCE, Action.CLOSE, Action.RETURN)


def roles(user: User) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_tracker_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._tracker_roles = cached
    return cached


def has_role(user: User, *wanted: Role) -> bool:
    return bool(roles(user) & {str(role) for role in wanted})


def is_governance_lead(user: User) -> bool:
    return has_role(user, Role.GOVERNANCE_LEAD)


def sees_whole_organisation(user: User) -> bool:
    return has_role(user, Role.GOVERNANCE_LEAD, Role.REVIEWER, Role.VIEWER)


def _same_organisation(user: User, recommendation: Recommendation) -> bool:
    return user.organisation_id is not None and user.organisation_id == recommendation.organisation_id


def role_allows(user: User, action: Action, recommendation: Recommendation) -> bool:
    """The role half of the rule. Whether it may happen *now* is ``tracker.policy.decide``."""
    if not user.is_authenticated or not user.is_active or not _same_organisation(user, recommendation):
        return False
    lead = is_governance_lead(user)
    owns = recommendation.owner_id == user.pk and has_role(user, Role.OWNER, Role.GOVERNANCE_LEAD)
    if action == Action.VIEW:
        return sees_whole_organisation(user) or recommendation.owner_id == user.pk
    if action in (Action.UPDATE, Action.ADD_EVIDENCE, Action.SUBMIT, Action.SET_RAG):
        return lead or owns
    if action in _ASSURANCE:
        return lead or has_role(user, Role.REVIEWER)
    # Reopening, reassigning, dates, wording and superseding shape the plan itself.
    return lead


def role_refusal(action: Action) -> str:
    return _MESSAGES[action]


def may_create_recommendations(user: User | None, organisation_id: int) -> bool:
    """Governance leads create recommendations for their own organisation's findings."""
    return (
        user is not None
        and is_governance_lead(user)
        and user.organisation_id is not None
        and user.organisation_id == organisation_id
    )


# Querysets: what a user may list. Anything outside them is "not found" to that user.


def visible_recommendations(user: User) -> QuerySet[Recommendation]:
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return Recommendation.objects.none()
    qs = Recommendation.objects.for_organisation(user.organisation_id)
    if sees_whole_organisation(user):
        return qs
    return qs.filter(owner=user)


def eligible_owners(organisation_id: int | None) -> QuerySet[User]:
    """Who may own a recommendation of this organisation: active owners and governance leads there.

    The pages, the API, the admin, imports and bulk actions all offer and accept only these people.
    """
    from tracker.models import User

    if organisation_id is None:
        return User.objects.none()
    return (
        User.objects.filter(
            organisation_id=organisation_id,
            is_active=True,
            groups__name__in=[str(Role.OWNER), str(Role.GOVERNANCE_LEAD)],
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


def visible_organisations(user: User) -> QuerySet[Organisation]:
    if not user.is_authenticated or not user.is_active or user.organisation_id is None or not roles(user):
        return Organisation.objects.none()
    return Organisation.objects.filter(pk=user.organisation_id)


def visible_inspections(user: User) -> QuerySet[Inspection]:
    if not user.is_authenticated or not user.is_active or user.organisation_id is None or not roles(user):
        return Inspection.objects.none()
    return Inspection.objects.filter(organisation_id=user.organisation_id)


def visible_findings(user: User) -> QuerySet[Finding]:
    return Finding.objects.filter(inspection__in=visible_inspections(user))


def visible_evidence(user: User) -> QuerySet[Evidence]:
    return Evidence.objects.filter(recommendation__in=visible_recommendations(user))


def visible_reminders(user: User) -> QuerySet[Reminder]:
    if not is_governance_lead(user) or user.organisation_id is None:
        return Reminder.objects.none()
    return Reminder.objects.filter(recommendation__organisation_id=user.organisation_id)
