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
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from tracker import notifications, permissions, policy
from tracker.errors import InvalidInput, StaleRecommendation, WorkflowError
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    Evidence,
    Finding,
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
