"""Every change to a recommendation, with its guards, in one place.

Each public function is one write: in a transaction it locks the row, asks ``tracker.policy`` whether
this person may do this now (role, then state, on the locked row), refuses a stale version, changes
the row, bumps the version, and records an event (the readable timeline) and history (every field, via
django-simple-history). Admin, staff pages, API and commands call these; nothing else changes a
recommendation. An import creates a whole new inspection's recommendations in bulk instead, applying
the same rules once per batch (``tracker.imports``).

Stale writes: ``expected_version`` is the version the caller last showed or read. When it is not
given, the version of the instance passed in is used, so a caller that read the row earlier is still
protected against a change made in between.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from tracker import notifications, outcomes, permissions, policy
from tracker.errors import InvalidInput, StaleRecommendation, WorkflowError
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    Evidence,
    Finding,
    Inspection,
    MeasureDataPoint,
    OutcomeMeasure,
    PlanAction,
    ProgressUpdate,
    Recommendation,
    RecommendationEvent,
)
from tracker.permissions import Action, NotPermitted
from tracker.uploads import CheckedUpload

__all__ = ["InvalidInput", "StaleRecommendation", "WorkflowError"]  # re-exported: callers catch them from here

if TYPE_CHECKING:
    from tracker.models import User

Status = Recommendation.Status
Event = RecommendationEvent.Action
# What set_rag accepts: a rating, never "not rated" (a rating once given is changed, not taken away).
RAG_RATINGS = tuple(value for value in Recommendation.Rag.values if value)


def _locked(recommendation: Recommendation) -> Recommendation:
    """Re-read the row under a lock: every decision is made on what is stored now."""
    # of=("self",): lock only this row; PostgreSQL cannot lock the nullable side of the owner join.
    return Recommendation.objects.select_for_update(of=("self",)).with_related().get(pk=recommendation.pk)


def _refuse_if_stale(current: Recommendation, expected_version: int) -> None:
    if current.version != expected_version:
        raise StaleRecommendation(
            "This recommendation was changed by someone else while you were working on it. "
            "Nothing was saved; reload the page to see the latest version and try again."
        )


def _save(rec: Recommendation, by: User | None, reason: str, fields: list[str]) -> None:
    rec.version += 1
    rec._history_user = by
    rec._change_reason = reason[:100] if reason else None
    rec.save(update_fields=[*fields, "version", "updated_at"])


def _event(rec: Recommendation, action: str, by: User | None, old="", new="", reason="") -> RecommendationEvent:
    event = RecommendationEvent.objects.create(
        recommendation=rec, action=action, actor=by, old_value=str(old or ""), new_value=str(new or ""), reason=reason
    )
    # The people this step concerns hear of it through the reminder ledger, committed with the change.
    notifications.notify(event, rec, old=old, new=new)
    return event


def _limited(value: str, model: type, field: str, label: str) -> str:
    """Free text within the field's limit, or a message that says how much to cut."""
    limit = model._meta.get_field(field).max_length
    if limit is not None and len(value) > limit:
        raise InvalidInput(
            f"{label} is {len(value):,} characters long; the limit is {limit:,}. Shorten it, or attach the "
            "full text as evidence."
        )
    return value


def _need_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"Give a reason for {what}.")
    return _limited(reason, RecommendationEvent, "reason", "The reason")


def _optional_reason(reason: str) -> str:
    return _limited((reason or "").strip(), RecommendationEvent, "reason", "The reason")


def _apply(
    recommendation: Recommendation, by: User, action: Action, expected_version: int | None, change: Callable
) -> Recommendation:
    """The common shape, all in one transaction on the locked row: who (role), stale or not, now or not
    (state), then the change. The role is checked again on the locked row, not only on the caller's copy.
    """
    policy.require_role(by, action, recommendation)
    if expected_version is None:
        expected_version = recommendation.version
    with transaction.atomic():
        rec = _locked(recommendation)
        policy.require_role(by, action, rec)
        _refuse_if_stale(rec, expected_version)
        policy.require(by, action, rec)
        change(rec)
    recommendation.refresh_from_db()
    return recommendation


def next_review_after_completion(rec: Recommendation, today: dt.date | None = None) -> dt.date:
    """Completing a review moves the due date on by the interval from the later of today and the
    current due date, so a review done early never leaves the date where it was."""
    base = max(today or timezone.localdate(), rec.next_review_due)
    return base + dt.timedelta(days=rec.review_interval_days)


# The transitions.


def post_update(
    recommendation: Recommendation,
    *,
    by: User,
    narrative: str,
    rag: str | None = None,
    review_completed: bool = False,
    expected_version: int | None = None,
) -> ProgressUpdate:
    """An owner's dated entry. Starts work if not started; completing a review moves the due date."""
    narrative = (narrative or "").strip()
    if not narrative:
        raise InvalidInput("Write what has happened since the last update.")
    _limited(narrative, ProgressUpdate, "narrative", "The update")
    if rag is not None and rag not in Recommendation.Rag.values:
        raise InvalidInput(f"{rag!r} is not a RAG rating; choose red, amber or green.")
    created: list[ProgressUpdate] = []

    def change(rec: Recommendation) -> None:
        fields: list[str] = []
        if rec.status == Status.NOT_STARTED:
            _event(rec, Event.STARTED, by, Status.NOT_STARTED.label, Status.IN_PROGRESS.label)
            rec.status = Status.IN_PROGRESS
            fields.append("status")
        update = ProgressUpdate(
            recommendation=rec, author=by, narrative=narrative, rag=rag or "", review_completed=review_completed
        )
        update._history_user = by
        update.save()
        created.append(update)
        _event(rec, Event.UPDATE, by, reason=narrative[:200])
        if rag and rag != rec.rag:
            policy.require(by, Action.SET_RAG, rec)  # a RAG given with an update follows the RAG rule too
            _event(rec, Event.RAG_CHANGED, by, rec.get_rag_display(), Recommendation.Rag(rag).label)
            rec.rag = rag
            fields.append("rag")
        if review_completed:
            new_due = next_review_after_completion(rec)
            _event(rec, Event.REVIEW_COMPLETED, by, rec.next_review_due, new_due)
            rec.next_review_due = new_due
            fields.append("next_review_due")
        _save(rec, by, "Progress update", fields)

    _apply(recommendation, by, Action.UPDATE, expected_version, change)
    created[0].recommendation = recommendation  # the caller's copy, now refreshed, not the locked one
    return created[0]


def add_evidence(
    recommendation: Recommendation,
    *,
    by: User,
    kind: str,
    category: str,
    description: str,
    upload: CheckedUpload | None = None,
    link: str = "",
    note: str = "",
    expected_version: int | None = None,
) -> Evidence:
    """Attach a file, a link or a note. A file arrives only as a ``CheckedUpload`` from ``tracker.uploads``."""
    description = (description or "").strip()
    if not description:
        raise InvalidInput("Say what this evidence shows.")
    _limited(description, Evidence, "description", "The description")
    _limited(note or "", Evidence, "note", "The note")
    _limited(link or "", Evidence, "link", "The link")
    if category not in Evidence.Category.values:
        raise InvalidInput("Say whether this evidence shows an output or an outcome.")
    content = {Evidence.Kind.FILE: upload, Evidence.Kind.LINK: link, Evidence.Kind.NOTE: note}
    if kind not in content:
        raise InvalidInput("Evidence is a file, a link or a note.")
    if not content[kind]:
        raise InvalidInput(f"Provide the {Evidence.Kind(kind).label.lower()} for this evidence.")
    created: list[Evidence] = []

    def change(rec: Recommendation) -> None:
        evidence = Evidence(
            recommendation=rec,
            kind=kind,
            category=category,
            description=description,
            link=link if kind == Evidence.Kind.LINK else "",
            note=note if kind == Evidence.Kind.NOTE else "",
            added_by=by,
        )
        created.append(evidence)
        if kind == Evidence.Kind.FILE:
            evidence.original_filename = upload.original_filename
            evidence.content_type = upload.content_type
            evidence.size_bytes = upload.file.size
            evidence.file.save("evidence", upload.file, save=False)
        evidence._history_user = by
        evidence.save()
        _event(rec, Event.EVIDENCE_ADDED, by, new=f"{evidence.get_category_display()}", reason=description[:200])
        _save(rec, by, "Evidence added", [])

    try:
        _apply(recommendation, by, Action.ADD_EVIDENCE, expected_version, change)
    except BaseException:
        # The row rolled back; the stored file must go too, or it would be an orphan.
        if created and created[0].file:
            created[0].file.storage.delete(created[0].file.name)
        raise
    created[0].recommendation = recommendation  # the caller's copy, now refreshed, not the locked one
    return created[0]


def submit_for_assurance(
    recommendation: Recommendation, *, by: User, expected_version: int | None = None
) -> Recommendation:
    def change(rec: Recommendation) -> None:
        _event(rec, Event.SUBMITTED, by, rec.get_status_display(), Status.AWAITING_ASSURANCE.label)
        rec.status = Status.AWAITING_ASSURANCE
        _save(rec, by, "Submitted for assurance", ["status"])

    return _apply(recommendation, by, Action.SUBMIT, expected_version, change)


def review_evidence(
    evidence: Evidence, *, by: User, accept: bool, reason: str = "", expected_version: int | None = None
) -> Evidence:
    """An assurance reviewer's verdict on one piece of evidence."""
    # The caller's own copy (``rec.evidence.get()`` hands it over): its version is the one they read,
    # and it is refreshed after the change like every other write.
    recommendation = evidence.recommendation
    reason = _need_reason(reason, "rejecting evidence") if not accept else _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        item = Evidence.objects.select_for_update().get(pk=evidence.pk, recommendation=rec)
        if item.verdict != Evidence.Verdict.PENDING:
            raise WorkflowError(f"This evidence has already been {item.get_verdict_display().lower()}.")
        if item.added_by_id == by.pk:
            raise WorkflowError(policy.FOUR_EYES_EVIDENCE)
        item.verdict = Evidence.Verdict.ACCEPTED if accept else Evidence.Verdict.REJECTED
        item.reviewed_by = by
        item.reviewed_at = timezone.now()
        item.rejection_reason = "" if accept else reason
        item._history_user = by
        item.save()
        action = Event.EVIDENCE_ACCEPTED if accept else Event.EVIDENCE_REJECTED
        _event(rec, action, by, new=item.description[:200], reason=reason)
        _save(rec, by, action.label, [])

    _apply(recommendation, by, Action.REVIEW_EVIDENCE, expected_version, change)
    evidence.refresh_from_db()
    return evidence


def close(
    recommendation: Recommendation, *, by: User, reason: str = "", expected_version: int | None = None
) -> Recommendation:
    reason = _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        _event(rec, Event.CLOSED, by, rec.get_status_display(), Status.CLOSED.label, reason)
        rec.status = Status.CLOSED
        _save(rec, by, "Closed at assurance", ["status"])

    return _apply(recommendation, by, Action.CLOSE, expected_version, change)


def reject(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    reason = _need_reason(reason, "rejecting the submission")

    def change(rec: Recommendation) -> None:
        _event(rec, Event.REJECTED, by, rec.get_status_display(), Status.IN_PROGRESS.label, reason)
        rec.status = Status.IN_PROGRESS
        _save(rec, by, "Rejected at assurance", ["status"])

    return _apply(recommendation, by, Action.RETURN, expected_version, change)


def reopen(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    reason = _need_reason(reason, "reopening")

    def change(rec: Recommendation) -> None:
        _event(rec, Event.REOPENED, by, rec.get_status_display(), Status.IN_PROGRESS.label, reason)
        rec.status = Status.IN_PROGRESS
        _save(rec, by, "Reopened", ["status"])

    return _apply(recommendation, by, Action.REOPEN, expected_version, change)


def supersede(
    recommendation: Recommendation,
    *,
    by: User,
    replacement: Recommendation,
    reason: str,
    expected_version: int | None = None,
) -> Recommendation:
    reason = _need_reason(reason, "superseding")

    def change(rec: Recommendation) -> None:
        current = Recommendation.objects.with_related().filter(pk=replacement.pk).first()
        if current is None or current.organisation_id != rec.organisation_id:
            raise InvalidInput("Choose a replacement from your own organisation's recommendations.")
        if current.pk == rec.pk:
            raise InvalidInput("A recommendation cannot supersede itself; choose the one that replaces it.")
        if current.status == Status.SUPERSEDED:
            raise InvalidInput("The replacement is itself superseded; choose the recommendation that is in force.")
        _event(rec, Event.SUPERSEDED, by, rec.get_status_display(), f"Superseded by {replacement.reference}", reason)
        rec.status = Status.SUPERSEDED
        rec.superseded_by = replacement
        _save(rec, by, "Superseded", ["status", "superseded_by"])

    return _apply(recommendation, by, Action.SUPERSEDE, expected_version, change)


def assign_owner(
    recommendation: Recommendation,
    *,
    by: User,
    owner: User | None,
    reason: str = "",
    expected_version: int | None = None,
) -> Recommendation:
    reason = _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        if owner is not None and not permissions.eligible_owners(rec.organisation_id).filter(pk=owner.pk).exists():
            if owner.organisation_id != rec.organisation_id:
                raise InvalidInput("That person cannot own this recommendation: choose someone from your organisation.")
            if not owner.is_active:
                raise InvalidInput(f"{owner} is no longer active and cannot own a recommendation.")
            raise InvalidInput(
                f"{owner} cannot own a recommendation: owners must have the Owner or Governance lead role."
            )
        if rec.owner_id == (owner.pk if owner else None):
            return
        _event(rec, Event.OWNER_CHANGED, by, rec.owner or "nobody", owner or "nobody", reason)
        rec.owner = owner
        _save(rec, by, "Owner changed", ["owner"])

    return _apply(recommendation, by, Action.REASSIGN, expected_version, change)


def set_rag(
    recommendation: Recommendation, *, by: User, rag: str, reason: str, expected_version: int | None = None
) -> Recommendation:
    """The RAG rating on its own, with the reason why: no progress update needed, and never the status."""
    if rag not in RAG_RATINGS:
        raise InvalidInput("Choose a RAG rating: red, amber or green.")
    reason = _need_reason(reason, "the RAG rating")

    def change(rec: Recommendation) -> None:
        if rec.rag == rag:
            return
        _event(rec, Event.RAG_CHANGED, by, rec.get_rag_display(), Recommendation.Rag(rag).label, reason)
        rec.rag = rag
        _save(rec, by, "RAG rating set", ["rag"])

    return _apply(recommendation, by, Action.SET_RAG, expected_version, change)


def _check_interval(days: object) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_REVIEW_INTERVAL_DAYS:
        raise InvalidInput(
            f"The review interval must be a whole number of days from 1 to {MAX_REVIEW_INTERVAL_DAYS} "
            "(every recommendation is reviewed at least once a year)."
        )


EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2099, 12, 31)


def change_target_date(
    recommendation: Recommendation,
    *,
    by: User,
    target_date: dt.date | None,
    reason: str = "",
    expected_version: int | None = None,
) -> Recommendation:
    """Set or move the target date. Removing it is a separate, explicit choice: ``remove_target_date``."""
    if not isinstance(target_date, dt.date):
        raise InvalidInput(
            "Enter the target date as a real date, for example 31 3 2027. To take the target date away, "
            "choose to remove it (with a reason) instead."
        )
    if not EARLIEST_DATE <= target_date <= LATEST_DATE:
        raise InvalidInput(f"The target date must be between {EARLIEST_DATE:%Y} and {LATEST_DATE:%Y}.")
    reason = _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        if rec.target_date == target_date:
            return
        # Setting the first target date is planning; moving an agreed one needs a reason.
        why = _need_reason(reason, "moving the target date") if rec.target_date else reason
        _event(rec, Event.TARGET_DATE_CHANGED, by, rec.target_date or "none", target_date, why)
        rec.target_date = target_date
        _save(rec, by, "Target date changed", ["target_date"])

    return _apply(recommendation, by, Action.CHANGE_TARGET_DATE, expected_version, change)


def remove_target_date(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    """Take an agreed target date away: only ever on purpose, with a reason, and on the timeline."""
    reason = _need_reason(reason, "removing the target date")

    def change(rec: Recommendation) -> None:
        if rec.target_date is None:
            raise InvalidInput("This recommendation has no target date to remove.")
        _event(rec, Event.TARGET_DATE_CHANGED, by, rec.target_date, "none", reason)
        rec.target_date = None
        _save(rec, by, "Target date removed", ["target_date"])

    return _apply(recommendation, by, Action.CHANGE_TARGET_DATE, expected_version, change)


def change_review_interval(
    recommendation: Recommendation, *, by: User, days: int, reason: str = "", expected_version: int | None = None
) -> Recommendation:
    _check_interval(days)
    reason = _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        if rec.review_interval_days == days:
            return
        _event(rec, Event.REVIEW_INTERVAL_CHANGED, by, rec.review_interval_days, days, reason)
        rec.review_interval_days = days
        _save(rec, by, "Review interval changed", ["review_interval_days"])

    return _apply(recommendation, by, Action.CHANGE_REVIEW_INTERVAL, expected_version, change)


def edit_details(
    recommendation: Recommendation, *, by: User, title: str, outcome_measure: str, expected_version: int | None = None
) -> Recommendation:
    """The governance lead's wording of the recommendation and how success will be measured."""
    title = (title or "").strip()
    if not title:
        raise InvalidInput("A recommendation needs a title.")
    _limited(title, Recommendation, "title", "The title")
    outcome_measure = _limited(
        (outcome_measure or "").strip(), Recommendation, "outcome_measure", "The outcome measure"
    )

    def change(rec: Recommendation) -> None:
        changed = [
            name
            for name, value in (("title", title), ("outcome_measure", outcome_measure))
            if getattr(rec, name) != value
        ]
        if not changed:
            return
        rec.title, rec.outcome_measure = title, outcome_measure
        _save(rec, by, "Details edited", changed)

    return _apply(recommendation, by, Action.EDIT, expected_version, change)


def create_recommendation(
    finding: Finding, *, by: User | None, interval_days: int | None = None, **details
) -> Recommendation:
    """One recommendation per finding, not started, first review one interval from today.

    ``by`` is the governance lead creating it; ``None`` only for the system itself (seeding).
    """
    from django.conf import settings

    organisation_id = finding.inspection.organisation_id
    if by is not None and not permissions.may_create_recommendations(by, organisation_id):
        raise NotPermitted("Only a governance lead of this organisation can create recommendations.")
    interval = interval_days or settings.DEFAULT_REVIEW_INTERVAL_DAYS
    _check_interval(interval)
    title = _limited((details.get("title") or finding.title).strip(), Recommendation, "title", "The title")
    with transaction.atomic():
        if Recommendation.objects.filter(finding=finding).exists():
            raise WorkflowError(f"Finding {finding.reference} already has a recommendation.")
        rec = Recommendation(
            finding=finding,
            organisation_id=organisation_id,
            title=title,
            outcome_measure=details.get("outcome_measure", ""),
            review_interval_days=interval,
            next_review_due=timezone.localdate() + dt.timedelta(days=interval),
        )
        rec._history_user = by
        rec.save()
        _event(rec, Event.CREATED, by, reason=details.get("reason", ""))
    return rec


# The action plan and outcome measures (issue 16). Each write locks the recommendation's row (so that
# its status and owner are read as stored, and writes to one recommendation queue), asks the policy on
# the locked row with the item whose owner or supplier may act, refuses a stale item, and records an
# event and history. Items carry their own ``version``: a plan action moving on does not make the
# recommendation's own forms stale.


def _stale_item(current, expected_version: int | None, what: str) -> None:
    if expected_version is not None and current.version != expected_version:
        raise StaleRecommendation(
            f"This {what} was changed by someone else while you were working on it. Nothing was saved; "
            "reload the page to see the latest version and try again."
        )


def _apply_to_item(
    recommendation: Recommendation,
    by: User,
    action: Action,
    change: Callable,
    item=None,
    *,
    lock_item: Callable | None = None,
    expected_version: int | None = None,
):
    """Role (on the caller's copy, then on the locked rows), then the recommendation's version when the write
    is about the recommendation itself (``expected_version``), then state; ``change(rec, locked_item)``."""
    policy.require_role(by, action, recommendation, item)
    with transaction.atomic():
        rec = _locked(recommendation)
        locked = lock_item(rec) if lock_item else None
        if expected_version is not None:
            _refuse_if_stale(rec, expected_version)
        policy.require(by, action, rec, locked)
        result = change(rec, locked)
    return result


def _plan_owner(rec: Recommendation, owner: User | None) -> User:
    if owner is None:
        raise InvalidInput("Choose who owns this action.")
    if not permissions.eligible_owners(rec.organisation_id).filter(pk=owner.pk).exists():
        raise InvalidInput(
            f"{owner} cannot own an action: choose an active owner or governance lead of this organisation."
        )
    return owner


def _plan_date(value: object, label: str) -> dt.date:
    if not isinstance(value, dt.date):
        raise InvalidInput(f"Enter the {label} as a real date, for example 31 3 2027.")
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise InvalidInput(f"The {label} must be between {EARLIEST_DATE:%Y} and {LATEST_DATE:%Y}.")
    return value


def _text(value: str, model: type, field: str, label: str, required: str = "") -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(required)
    return _limited(value, model, field, label)


def add_plan_action(
    recommendation: Recommendation, *, by: User, description: str, owner: User | None, due_date: dt.date
) -> PlanAction:
    """A new action in the recommendation's plan, not started."""
    description = _text(description, PlanAction, "description", "The action", "Say what will be done.")
    due_date = _plan_date(due_date, "due date")

    def change(rec: Recommendation, _item) -> PlanAction:
        item = PlanAction(recommendation=rec, description=description, owner=_plan_owner(rec, owner), due_date=due_date)
        item._history_user = by
        item.save()
        _event(rec, Event.PLAN_ACTION_ADDED, by, new=f"{description[:150]} (due {due_date:%-d %b %Y})")
        return item

    return _apply_to_item(recommendation, by, Action.MANAGE_PLAN, change)


def _lock_plan_action(item: PlanAction) -> Callable:
    def lock(rec: Recommendation) -> PlanAction:
        found = PlanAction.objects.select_for_update().filter(pk=item.pk, recommendation=rec).first()
        if found is None:
            raise InvalidInput("That action is not part of this recommendation's plan.")
        return found

    return lock


def change_plan_action(
    item: PlanAction,
    *,
    by: User,
    description: str,
    owner: User | None,
    due_date: dt.date,
    reason: str = "",
    expected_version: int | None = None,
) -> PlanAction:
    """The plan manager's change of an action's wording, owner or due date; moving the date needs a reason."""
    description = _text(description, PlanAction, "description", "The action", "Say what will be done.")
    due_date = _plan_date(due_date, "due date")
    reason = _optional_reason(reason)
    expected = item.version if expected_version is None else expected_version

    def change(rec: Recommendation, current: PlanAction) -> PlanAction:
        _stale_item(current, expected, "action")
        new_owner = _plan_owner(rec, owner)
        changed = []
        if current.due_date != due_date:
            why = _need_reason(reason, "moving the action's due date")
            _event(rec, Event.PLAN_ACTION_DUE_DATE, by, current.due_date, due_date, why)
            current.due_date = due_date
            changed.append("due_date")
        if current.owner_id != new_owner.pk or current.description != description:
            _event(rec, Event.PLAN_ACTION_CHANGED, by, current.owner, new_owner, reason)
            current.owner, current.description = new_owner, description
            changed += ["owner", "description"]
        if not changed:
            return current
        current.version += 1
        current._history_user = by
        current._change_reason = reason[:100] or None
        current.save()
        return current

    result = _apply_to_item(item.recommendation, by, Action.MANAGE_PLAN, change, lock_item=_lock_plan_action(item))
    item.refresh_from_db()
    return result


def set_plan_action_status(
    item: PlanAction,
    *,
    by: User,
    status: str,
    blocked_reason: str = "",
    evidence_link: str = "",
    expected_version: int | None = None,
) -> PlanAction:
    """The action's owner (or whoever manages the plan) moves it on: in progress, done, or blocked with a reason."""
    if status not in PlanAction.Status.values:
        raise InvalidInput("Choose the action's status: not started, in progress, done or blocked.")
    blocked_reason = _text(blocked_reason, PlanAction, "blocked_reason", "The reason")
    if status == PlanAction.Status.BLOCKED and not blocked_reason:
        raise InvalidInput("Give a reason for the action being blocked.")
    evidence_link = _limited((evidence_link or "").strip(), PlanAction, "evidence_link", "The link")
    if evidence_link:
        try:
            URLValidator(schemes=["http", "https"])(evidence_link)
        except ValidationError:
            raise InvalidInput("Enter the evidence link as a web address, like https://example.org/report") from None
    expected = item.version if expected_version is None else expected_version

    def change(rec: Recommendation, current: PlanAction) -> PlanAction:
        _stale_item(current, expected, "action")
        new_reason = blocked_reason if status == PlanAction.Status.BLOCKED else ""
        if (current.status, current.blocked_reason, current.evidence_link) == (status, new_reason, evidence_link):
            return current
        _event(
            rec,
            Event.PLAN_ACTION_STATUS,
            by,
            current.get_status_display(),
            f"{PlanAction.Status(status).label}: {current.description[:120]}",
            new_reason,
        )
        current.status, current.blocked_reason, current.evidence_link = status, new_reason, evidence_link
        current.completed_at = timezone.now() if status == PlanAction.Status.DONE else None
        current.version += 1
        current._history_user = by
        current.save()
        return current

    result = _apply_to_item(
        item.recommendation, by, Action.UPDATE_PLAN_ACTION, change, item, lock_item=_lock_plan_action(item)
    )
    item.refresh_from_db()
    return result


def _decimal(value: object, label: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"Enter the {label} as a number, for example 85 or 12.5.") from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 10:
        raise InvalidInput(f"Enter the {label} as a number below 10,000,000,000.")
    if number != number.quantize(Decimal("0.0001")):
        raise InvalidInput(f"The {label} can have at most 4 decimal places.")
    return number


def add_measure(
    recommendation: Recommendation,
    *,
    by: User,
    name: str,
    definition: str,
    unit: str,
    direction: str,
    baseline_value: object,
    baseline_period: dt.date,
    target_value: object,
    target_date: dt.date,
    frequency: str,
    supplier: User | None,
    expected_version: int | None = None,
) -> OutcomeMeasure:
    """An outcome measure with its baseline, target and who supplies its data.

    ``expected_version`` is the recommendation's version the form or client read, as for the recommendation's
    other writes: a measure added to a recommendation that has moved on since (closed, reassigned, its gating
    changed) is refused and nothing is saved. Pages and API always send it; a command or the demo, which
    reads and writes in one go, may leave it out.
    """
    name = _text(name, OutcomeMeasure, "name", "The name", "Give the measure a name.")
    definition = _text(definition, OutcomeMeasure, "definition", "The definition", "Say how the measure is counted.")
    unit = _text(unit, OutcomeMeasure, "unit", "The unit")
    if direction not in OutcomeMeasure.Direction.values:
        raise InvalidInput("Say whether a higher or a lower value is better.")
    if frequency not in OutcomeMeasure.Frequency.values:
        raise InvalidInput("Say whether data is due monthly or quarterly.")
    baseline_value = _decimal(baseline_value, "baseline")
    target_value = _decimal(target_value, "target")
    baseline_period = outcomes.period_start(_plan_date(baseline_period, "baseline period"), frequency)
    target_date = _plan_date(target_date, "target date")
    if supplier is None:
        raise InvalidInput("Choose who supplies the measure's data.")

    def change(rec: Recommendation, _item) -> OutcomeMeasure:
        if not permissions.eligible_owners(rec.organisation_id).filter(pk=supplier.pk).exists():
            raise InvalidInput(
                f"{supplier} cannot supply a measure's data: choose an active owner or governance lead of this "
                "organisation."
            )
        if rec.measures.filter(name=name).exists():
            raise InvalidInput(f"This recommendation already has a measure called “{name}”; choose another name.")
        measure = OutcomeMeasure(
            recommendation=rec,
            name=name,
            definition=definition,
            unit=unit,
            direction=direction,
            baseline_value=baseline_value,
            baseline_period=baseline_period,
            target_value=target_value,
            target_date=target_date,
            frequency=frequency,
            supplier=supplier,
        )
        measure._history_user = by
        measure.save()
        _event(rec, Event.MEASURE_ADDED, by, new=f"{name[:120]}: target {outcomes.target_text(measure)}")
        return measure

    return _apply_to_item(recommendation, by, Action.MANAGE_MEASURES, change, expected_version=expected_version)


def _lock_measure(measure: OutcomeMeasure) -> Callable:
    def lock(rec: Recommendation) -> OutcomeMeasure:
        found = OutcomeMeasure.objects.select_for_update().filter(pk=measure.pk, recommendation=rec).first()
        if found is None:
            raise InvalidInput("That measure is not one of this recommendation's.")
        return found

    return lock


def enter_measure_data(
    measure: OutcomeMeasure, *, by: User, period: dt.date, value: object, note: str = ""
) -> MeasureDataPoint:
    """One period's value. ``period`` is any day in it; a period already entered is corrected instead."""
    value = _decimal(value, "value")
    note = _text(note, MeasureDataPoint, "note", "The note")
    period = _plan_date(period, "period")

    def change(rec: Recommendation, current: OutcomeMeasure) -> MeasureDataPoint:
        start = outcomes.period_start(period, current.frequency)
        label = outcomes.period_label(start, current.frequency)
        if start > outcomes.period_start(timezone.localdate(), current.frequency):
            raise InvalidInput(f"{label} has not started yet; enter data for a period that has.")
        if current.data_points.filter(period=start).exists():
            raise InvalidInput(f"“{current.name}” already has a value for {label}; correct that value instead.")
        point = MeasureDataPoint(measure=current, period=start, value=value, note=note, entered_by=by)
        point._history_user = by
        point.save()
        _event(rec, Event.MEASURE_DATA_ENTERED, by, new=f"{current.name[:120]}, {label}: {outcomes.number(value)}")
        return point

    return _apply_to_item(
        measure.recommendation, by, Action.ENTER_MEASURE_DATA, change, measure, lock_item=_lock_measure(measure)
    )


def correct_measure_data(
    point: MeasureDataPoint,
    *,
    by: User,
    value: object,
    note: str,
    reason: str,
    expected_version: int | None = None,
) -> MeasureDataPoint:
    """Change an entered value: only with a reason, kept in the timeline and the data point's history."""
    value = _decimal(value, "value")
    note = _text(note, MeasureDataPoint, "note", "The note")
    reason = _need_reason(reason, "correcting the value")
    expected = point.version if expected_version is None else expected_version
    measure = point.measure

    def change(rec: Recommendation, current_measure: OutcomeMeasure) -> MeasureDataPoint:
        current = MeasureDataPoint.objects.select_for_update().filter(pk=point.pk, measure=current_measure).first()
        if current is None:
            raise InvalidInput("That value is not one of this measure's.")
        _stale_item(current, expected, "value")
        if (current.value, current.note) == (value, note):
            return current
        label = outcomes.period_label(current.period, current_measure.frequency)
        _event(
            rec,
            Event.MEASURE_DATA_CORRECTED,
            by,
            f"{current_measure.name[:100]}, {label}: {outcomes.number(current.value)}",
            outcomes.number(value),
            reason,
        )
        current.value, current.note, current.correction_reason = value, note, reason
        current.version += 1
        current._history_user = by
        current._change_reason = reason[:100]
        current.save()
        return current

    result = _apply_to_item(
        measure.recommendation, by, Action.ENTER_MEASURE_DATA, change, measure, lock_item=_lock_measure(measure)
    )
    point.refresh_from_db()
    return result


def set_outcome_gated(
    recommendation: Recommendation, *, by: User, gated: bool, reason: str = "", expected_version: int | None = None
) -> Recommendation:
    """A lead decides that this recommendation closes only on its outcomes (or no longer does: with a reason)."""
    reason = _optional_reason(reason)

    def change(rec: Recommendation) -> None:
        if rec.outcome_gated == gated:
            return
        why = reason if gated else _need_reason(reason, "no longer closing this recommendation on its outcomes")
        _event(rec, Event.OUTCOME_GATE_CHANGED, by, _gate_label(rec.outcome_gated), _gate_label(gated), why)
        rec.outcome_gated = gated
        _save(rec, by, "Outcome gating changed", ["outcome_gated"])

    return _apply(recommendation, by, Action.SET_OUTCOME_GATED, expected_version, change)


def _gate_label(gated: bool) -> str:
    return "Closes on outcomes" if gated else "Does not close on outcomes"


def override_outcome_gate(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    """A reviewer who did none of the work lets it close without its measures at target, saying why."""
    reason = _need_reason(reason, "closing without the outcome measures at target")

    def change(rec: Recommendation) -> None:
        _event(rec, Event.OUTCOME_GATE_OVERRIDDEN, by, "Measures not at target", "Override recorded", reason)
        _save(rec, by, "Outcome gate overridden", [])

    return _apply(recommendation, by, Action.OVERRIDE_OUTCOME_GATE, expected_version, change)


# An inspection's dates (tracker.deadlines): the force's action plan and the inspectorate's revisit, set
# by a governance lead. Not a recommendation's, so no timeline event: the inspection's history keeps who,
# when, the old and new dates and the reason (which therefore fits history's 100 characters).

INSPECTION_DATE_FIELDS = {"action_plan_due": "the action plan date", "revisit_due": "the revisit date"}
INSPECTION_REASON_LIMIT = 100


def set_inspection_dates(
    inspection: Inspection,
    *,
    by: User,
    action_plan_due: dt.date | None,
    revisit_due: dt.date | None,
    reason: str = "",
    expected: tuple[dt.date | None, dt.date | None] | None = None,
) -> Inspection:
    """Set, move or clear the action plan and revisit dates. Setting a first date is planning; moving or
    clearing one already set needs a reason. ``expected``: the (action plan, revisit) dates the person was
    shown, so that a change made meanwhile by someone else is not silently overwritten."""
    wanted = {"action_plan_due": action_plan_due, "revisit_due": revisit_due}
    for name, value in wanted.items():
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise InvalidInput(
                f"{INSPECTION_DATE_FIELDS[name].capitalize()} must be between {EARLIEST_DATE:%Y} and {LATEST_DATE:%Y}."
            )
    reason = (reason or "").strip()
    if len(reason) > INSPECTION_REASON_LIMIT:
        raise InvalidInput(
            f"The reason is {len(reason)} characters long; the limit is {INSPECTION_REASON_LIMIT}. Shorten it."
        )
    with transaction.atomic():
        current = (
            Inspection.objects.select_for_update(of=("self",)).select_related("organisation").get(pk=inspection.pk)
        )
        policy.decide_inspection_dates(by, current).raise_if_refused()
        if expected is not None and (current.action_plan_due, current.revisit_due) != tuple(expected):
            raise StaleRecommendation(
                "These dates were changed by someone else while you were working on them. Nothing was saved; "
                "reload the page to see the latest dates and try again."
            )
        changed = [name for name, value in wanted.items() if getattr(current, name) != value]
        if not changed:
            return current
        moved = [INSPECTION_DATE_FIELDS[name] for name in changed if getattr(current, name) is not None]
        if moved and not reason:
            raise InvalidInput(f"Give a reason for moving or removing {' and '.join(moved)}.")
        for name in changed:
            setattr(current, name, wanted[name])
        try:
            current.clean()  # never before publication
        except ValidationError as exc:
            raise InvalidInput(
                " ".join(message for messages in exc.message_dict.values() for message in messages)
            ) from None
        current._history_user = by
        current._change_reason = reason or "Dates set"
        current.save(update_fields=changed)
    return current
