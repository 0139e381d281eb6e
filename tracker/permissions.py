"""Who may do what. The admin, the staff pages and the API all ask this module.

Roles are Django groups; object rules sit on top: everybody is confined to their own
organisation, and an owner acts only on what they own.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils.functional import LazyObject, empty

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
    # The action plan and outcome measures (issue 16). Two are decided per item as well: see role_allows.
    MANAGE_PLAN = "manage_plan"  # add plan actions; change their wording, owner and due date
    UPDATE_PLAN_ACTION = "update_plan_action"  # move a plan action's status (not started ... done, blocked)
    MANAGE_MEASURES = "manage_measures"  # add outcome measures
    ENTER_MEASURE_DATA = "enter_measure_data"  # add or correct a period's value of a measure
    SET_OUTCOME_GATED = "set_outcome_gated"  # mark a recommendation as closing only on outcomes
    OVERRIDE_OUTCOME_GATE = "override_outcome_gate"  # let it close without its measures at target, with a reason


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
    Action.MANAGE_PLAN: "Only the recommendation's owner or a governance lead can change its action plan.",
    Action.UPDATE_PLAN_ACTION: "Only the action's owner, the recommendation's owner or a governance lead can update "
    "this action.",
    Action.MANAGE_MEASURES: "Only the recommendation's owner or a governance lead can add outcome measures.",
    Action.ENTER_MEASURE_DATA: "Only the measure's supplier, the recommendation's owner or a governance lead can "
    "enter its data.",
    Action.SET_OUTCOME_GATED: "Only a governance lead can decide whether a recommendation closes on outcomes.",
    Action.OVERRIDE_OUTCOME_GATE: "Only an assurance reviewer or a governance lead can record an outcome override.",
}
assert set(_MESSAGES) == set(Action)

_ASSURANCE = (Action.REVIEW_EVIDENCE, Action.CLOSE, Action.RETURN, Action.OVERRIDE_OUTCOME_GATE)
# Planning the work and its measures: the accountable owner and the leads.
_PLANNING = (Action.MANAGE_PLAN, Action.MANAGE_MEASURES)
# Who is responsible for one item: a plan action's owner, a measure's supplier.
_ITEM_HOLDER = {Action.UPDATE_PLAN_ACTION: "owner_id", Action.ENTER_MEASURE_DATA: "supplier_id"}


def concrete(user: User) -> User:
    """The user itself, not the request's lazy stand-in for it.

    ``request.user`` is a ``SimpleLazyObject``: every attribute read goes through its proxy. A list asks
    each row's every action of the same user, some hundred thousand reads a page, so the rule asks them of
    the real object.
    """
    if isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


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


def role_allows(user: User, action: Action, recommendation: Recommendation, item: object | None = None) -> bool:
    """The role half of the rule. Whether it may happen *now* is ``tracker.policy.decide``.

    ``item``: for updating a plan action and entering a measure's data, the action or measure: its own
    owner or supplier (an active owner or lead of the organisation) may too. Without an item the answer
    is for what the recommendation's owner and the leads may do to any of its items.
    """
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
    if action in _PLANNING:
        return lead or owns
    if action in _ITEM_HOLDER:
        holds = (
            item is not None
            and getattr(item, _ITEM_HOLDER[action]) == user.pk
            and has_role(user, Role.OWNER, Role.GOVERNANCE_LEAD)
        )
        return lead or owns or holds
    # Reopening, reassigning, dates, wording and superseding shape the plan itself.
    return lead


def actions_role_allows(user: User, recommendation: Recommendation) -> frozenset[Action]:
    """Every action :func:`role_allows` gives ``user`` on ``recommendation`` (no item), for a whole row.

    Without an item the answer depends on the recommendation only through its organisation and whether
    ``user`` owns it, so it is worked out once per pair and kept on the user object, as the roles are: a
    page of fifty rows asks the rule two or three times, not a thousand.
    """
    if not user.is_authenticated:
        return frozenset()
    owns = recommendation.owner_id is not None and recommendation.owner_id == user.pk
    # What the rule reads of the user is in the key too, so a changed role or organisation is never stale.
    key = (user.is_active, roles(user), user.organisation_id, recommendation.organisation_id, owns)
    tables = user.__dict__.setdefault("_tracker_role_tables", {})
    if key not in tables:
        tables[key] = frozenset(action for action in Action if role_allows(user, action, recommendation))
    return tables[key]


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


# An inspection's own dates: the force's action plan and the inspectorate's revisit (tracker.deadlines).
SET_INSPECTION_DATES = "set_inspection_dates"
SET_INSPECTION_DATES_REFUSAL = "Only a governance lead can set an inspection's action plan and revisit dates."


def may_set_inspection_dates(user: User, inspection: Inspection) -> bool:
    """The role half; whether it may happen now is ``tracker.policy.decide_inspection_dates``."""
    return (
        user.is_authenticated
        and user.is_active
        and user.organisation_id is not None
        and user.organisation_id == inspection.organisation_id
        and is_governance_lead(user)
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
    return Reminder.objects.filter(reminder_of_organisation(user.organisation_id))


def reminder_of_organisation(organisation_id: int) -> Q:
    """A ledger row of this organisation, by whichever item it is about: a recommendation (a review or a
    notification), a plan action, an outcome measure or an inspection (its deadlines)."""
    return (
        Q(recommendation__organisation_id=organisation_id)
        | Q(plan_action__recommendation__organisation_id=organisation_id)
        | Q(measure__recommendation__organisation_id=organisation_id)
        | Q(inspection__organisation_id=organisation_id)
    )


# The action plan and outcome measures (issue 16). An action's owner and a measure's supplier see their
# own item (and only the recommendation's reference and title with it), not the whole recommendation.


def visible_plan_actions(user: User) -> QuerySet:
    from tracker.models import PlanAction

    if not user.is_authenticated or not user.is_active or user.organisation_id is None or not roles(user):
        return PlanAction.objects.none()
    mine = Q(recommendation__in=visible_recommendations(user)) | Q(owner=user)
    return PlanAction.objects.filter(mine, recommendation__organisation_id=user.organisation_id)


def visible_measures(user: User) -> QuerySet:
    from tracker.models import OutcomeMeasure

    if not user.is_authenticated or not user.is_active or user.organisation_id is None or not roles(user):
        return OutcomeMeasure.objects.none()
    mine = Q(recommendation__in=visible_recommendations(user)) | Q(supplier=user)
    return OutcomeMeasure.objects.filter(mine, recommendation__organisation_id=user.organisation_id)


def visible_data_points(user: User) -> QuerySet:
    from tracker.models import MeasureDataPoint

    return MeasureDataPoint.objects.filter(measure__in=visible_measures(user))
