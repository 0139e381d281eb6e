"""Notifications of workflow steps: who hears of each step, when, and each person's choice of timing.

``notify`` is called by ``tracker.workflow`` once per event it records, inside the same transaction, and
adds a row to the reminder ledger for each person the step concerns: the same ledger as the review
reminders, so the same unique constraint (one row per event, recipient and stage), leases, retries,
failed and dead states and the admin's health page apply. Rows are delivered by ``tracker.reminders``:

- *within minutes*: the row is pending at once and the every-minute delivery tick sends it, together
  with anything else that came for the same person in that minute (one email, not one per click);
- *in the daily digest*: the row is *held* until the next daily sweep releases it (``release_daily``),
  so it arrives in the same email as that person's review reminders.

Nobody is told about their own action, and only active people of the recommendation's organisation are
told anything. The emails say what kind of step happened and link to the page: never a title, a
reference, a quote or a reason (reasons stay in the system, behind sign-in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tracker import permissions
from tracker.errors import InvalidInput
from tracker.models import (
    NotificationPreference,
    Recommendation,
    RecommendationEvent,
    Reminder,
    User,
)
from tracker.permissions import Role

Kind = NotificationPreference.Kind
Delivery = NotificationPreference.Delivery
Stage = Reminder.Stage
State = Reminder.State
Event = RecommendationEvent.Action

# Which choice each stage follows.
KIND_OF_STAGE: Mapping[str, str] = MappingProxyType(
    {
        Stage.ASSIGNED: Kind.OWNERSHIP,
        Stage.UNASSIGNED: Kind.OWNERSHIP,
        Stage.SUBMITTED: Kind.AWAITING_ASSURANCE,
        Stage.EVIDENCE_REJECTED: Kind.RETURNED,
        Stage.RETURNED: Kind.RETURNED,
        Stage.REOPENED: Kind.RETURNED,
        Stage.EVIDENCE_ACCEPTED: Kind.ACCEPTED,
        Stage.CLOSED: Kind.ACCEPTED,
        Stage.TARGET_MOVED: Kind.TARGET_MOVED,
    }
)

# Work that waits on the person comes within minutes; news that asks nothing of them today (a new
# recommendation to plan, good news, a lead's oversight of slipped dates) waits for the morning digest.
DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        Kind.OWNERSHIP: Delivery.DAILY,
        Kind.AWAITING_ASSURANCE: Delivery.IMMEDIATE,
        Kind.RETURNED: Delivery.IMMEDIATE,
        Kind.ACCEPTED: Delivery.DAILY,
        Kind.TARGET_MOVED: Delivery.DAILY,
        Kind.ESCALATIONS: Delivery.DAILY,
    }
)

# Escalations (and recommendations without an owner) come from the daily sweep: they are only ever in
# the daily digest, and a governance lead, the last person an overdue review can reach, cannot turn them off.
LEADS_CANNOT_TURN_OFF = "Governance leads cannot turn off escalations: an overdue review must always reach someone."
ONLY_DAILY = "Escalations come from the daily sweep, so they are always in the daily digest."

# The stages that go to the recommendation's owner, and stop being wanted once someone else owns it.
_TO_OWNER = {
    Event.EVIDENCE_ACCEPTED: Stage.EVIDENCE_ACCEPTED,
    Event.EVIDENCE_REJECTED: Stage.EVIDENCE_REJECTED,
    Event.CLOSED: Stage.CLOSED,
    Event.REJECTED: Stage.RETURNED,
    Event.REOPENED: Stage.REOPENED,
}
_OWNER_STAGES = {*_TO_OWNER.values(), Stage.ASSIGNED}


def _colleagues(organisation_id: int, role: Role) -> QuerySet[User]:
    return User.objects.filter(organisation_id=organisation_id, is_active=True, groups__name=str(role))


def recipients(event: RecommendationEvent, rec: Recommendation, old: object, new: object) -> list[tuple[User, str]]:
    """(person, stage) for everyone this step concerns; ``old`` and ``new`` are as the workflow gave them."""
    action = event.action
    found: list[tuple[User, str]] = []
    if action == Event.OWNER_CHANGED:
        if isinstance(new, User):
            found.append((new, Stage.ASSIGNED))
        if isinstance(old, User):
            found.append((old, Stage.UNASSIGNED))
    elif action in _TO_OWNER and rec.owner is not None:
        found.append((rec.owner, _TO_OWNER[action]))
    elif action == Event.SUBMITTED:
        found += [(person, Stage.SUBMITTED) for person in _colleagues(rec.organisation_id, Role.REVIEWER)]
    elif action == Event.TARGET_DATE_CHANGED and isinstance(old, dt.date):
        # A date moved or removed; setting the first one is planning, not news.
        found += [(person, Stage.TARGET_MOVED) for person in _colleagues(rec.organisation_id, Role.GOVERNANCE_LEAD)]
    # Never about your own action; only active people of the recommendation's own organisation.
    return [
        (person, stage)
        for person, stage in found
        if person.pk != event.actor_id and person.is_active and person.organisation_id == rec.organisation_id
    ]


def choices_for(users: Iterable[User]) -> dict[tuple[int, str], str]:
    """(user id, kind) -> delivery, as chosen; missing pairs take ``DEFAULTS``."""
    ids = [user.pk for user in users]
    if not ids:
        return {}
    rows = NotificationPreference.objects.filter(user_id__in=ids).values_list("user_id", "kind", "delivery")
    return {(user_id, kind): delivery for user_id, kind, delivery in rows}


def notify(event: RecommendationEvent, rec: Recommendation, *, old: object = None, new: object = None) -> int:
    """Add the ledger rows for one workflow event; call inside the transaction that recorded it.

    Returns how many rows were added. A second call for the same event breaks the unique constraint
    (``reminder_once_per_event``), which rolls the whole change back rather than notify anyone twice.
    """
    return _add_rows([(event, rec, person, stage) for person, stage in recipients(event, rec, old, new)])


def notify_assigned(assignments: Iterable[tuple[RecommendationEvent, Recommendation, User]]) -> int:
    """``notify`` for many owner assignments at once (an import): one query for everyone's choices and one
    INSERT, whatever the number of rows. Each (event, recommendation, new owner) is an OWNER_CHANGED event
    already saved, from nobody to that owner; the same people are told as ``notify`` would tell."""
    assignments = list(assignments)
    # The owners afresh, in one query: the caller's copies may have deferred the fields asked below.
    owners = User.objects.in_bulk({owner.pk for _, _, owner in assignments})
    return _add_rows(
        [
            (event, rec, person, stage)
            for event, rec, owner in assignments
            if owner.pk in owners
            for person, stage in recipients(event, rec, None, owners[owner.pk])
        ]
    )


def _add_rows(found: list[tuple[RecommendationEvent, Recommendation, User, str]]) -> int:
    """One ledger row per (event, recommendation, person, stage), held for the digest or pending as each
    person chose (one query for their choices, one INSERT)."""
    if not found:
        return 0
    chosen = choices_for({person.pk: person for _, _, person, _ in found}.values())
    now = timezone.now()
    rows = []
    for event, rec, person, stage in found:
        kind = KIND_OF_STAGE[stage]
        delivery = chosen.get((person.pk, kind), DEFAULTS[kind])
        rows.append(
            Reminder(
                recommendation_id=rec.pk,
                recipient=person,
                stage=stage,
                event=event,
                state=State.HELD if delivery == Delivery.DAILY else State.PENDING,
                next_attempt_at=now,
            )
        )
    Reminder.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def release_daily(now: dt.datetime | None = None) -> int:
    """The daily sweep's part: every held notification becomes due now, to go out with the review digest."""
    return Reminder.objects.filter(state=State.HELD).update(state=State.PENDING, next_attempt_at=now or timezone.now())


def still_wanted(row: Reminder) -> bool:
    """Is this notification still worth sending? Checked at delivery, on the recommendation as it is now.

    The person must still be active and of the recommendation's organisation; news for the owner is
    dropped once someone else owns it, and "awaiting your assurance" once the submission is decided.
    """
    rec, person = row.recommendation, row.recipient
    if not person.is_active or person.organisation_id != rec.organisation_id:
        return False
    if row.stage in _OWNER_STAGES and rec.owner_id != person.pk:
        return False
    if row.stage == Stage.SUBMITTED and rec.status != Recommendation.Status.AWAITING_ASSURANCE:
        return False
    return True


# The settings page.


def kinds_for(user: User) -> list[str]:
    """The kinds of notification this person can receive, by role, in the order the page shows them."""
    kinds = []
    if permissions.has_role(user, Role.OWNER, Role.GOVERNANCE_LEAD):
        kinds += [Kind.RETURNED, Kind.OWNERSHIP, Kind.ACCEPTED]
    if permissions.has_role(user, Role.REVIEWER):
        kinds.append(Kind.AWAITING_ASSURANCE)
    if permissions.is_governance_lead(user):
        kinds += [Kind.TARGET_MOVED, Kind.ESCALATIONS]
    return kinds


def allowed_deliveries(kind: str) -> list[str]:
    """Escalations come only from the daily sweep and only leads receive them here, who cannot turn them off."""
    if kind == Kind.ESCALATIONS:
        return [Delivery.DAILY]
    return [Delivery.IMMEDIATE, Delivery.DAILY]


def preferences(user: User) -> dict[str, str]:
    """kind -> delivery for each kind this person can receive: their choice, else the default."""
    chosen = choices_for([user])
    return {kind: chosen.get((user.pk, kind), DEFAULTS[kind]) for kind in kinds_for(user)}


def refusal(user: User, kind: str, delivery: str) -> str | None:
    """Why this person may not choose this, or None if they may."""
    if kind not in kinds_for(user):
        return "You do not receive notifications of this kind."
    if delivery not in allowed_deliveries(kind):
        if kind == Kind.ESCALATIONS:
            return LEADS_CANNOT_TURN_OFF if delivery == Delivery.OFF else ONLY_DAILY
        return "Choose within minutes or in the daily digest."
    return None


def set_preferences(user: User, choices: Mapping[str, str]) -> None:
    """Save a person's choices, all or nothing: any refused choice raises ``InvalidInput`` and saves none."""
    for kind, delivery in choices.items():
        problem = refusal(user, kind, delivery)
        if problem:
            raise InvalidInput(problem)
    with transaction.atomic():
        for kind, delivery in choices.items():
            pref = NotificationPreference.objects.filter(user=user, kind=kind).first()
            if pref is not None and pref.delivery == delivery:
                continue
            pref = pref or NotificationPreference(user=user, kind=kind)
            pref.delivery = delivery
            pref._history_user = user
            pref.save()
