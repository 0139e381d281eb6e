"""Every change to a recommendation, with its guards, in one place.

Each public function is one write: it checks permission, checks the guard, changes the row in a
transaction, bumps the version, and records an event (the readable timeline) and history (every
field, via django-simple-history). Admin, staff pages and API call these; nothing else writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from tracker.models import Evidence, Finding, ProgressUpdate, Recommendation, RecommendationEvent
from tracker.permissions import Action, require
from tracker.uploads import CheckedUpload

if TYPE_CHECKING:
    from tracker.models import User

Status = Recommendation.Status
Event = RecommendationEvent.Action


class WorkflowError(Exception):
    """An action that is not allowed now. The message tells the user what to do instead."""


class InvalidInput(WorkflowError):
    """The request itself is incomplete or malformed (a missing reason, an empty narrative)."""


class StaleRecommendation(WorkflowError):
    """The recommendation changed after the user loaded it."""


def _locked(recommendation: Recommendation, expected_version: int | None) -> Recommendation:
    """Re-read the row under a lock and refuse if someone else changed it in the meantime."""
    # of=("self",): lock only this row; PostgreSQL cannot lock the nullable side of the owner join.
    current = Recommendation.objects.select_for_update(of=("self",)).with_related().get(pk=recommendation.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleRecommendation(
            "This recommendation was changed by someone else while you were working on it. "
            "Nothing was saved; reload the page to see the latest version and try again."
        )
    return current


def _save(rec: Recommendation, by: User | None, reason: str, fields: list[str]) -> None:
    rec.version += 1
    rec._history_user = by
    rec._change_reason = reason[:100] if reason else None
    rec.save(update_fields=[*fields, "version", "updated_at"])


def _event(rec: Recommendation, action: str, by: User | None, old="", new="", reason="") -> RecommendationEvent:
    return RecommendationEvent.objects.create(
        recommendation=rec, action=action, actor=by, old_value=str(old or ""), new_value=str(new or ""), reason=reason
    )


def _need_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"Give a reason for {what}.")
    return reason


def _apply(
    recommendation: Recommendation, by: User, action: Action, expected_version: int | None, change: Callable
) -> Recommendation:
    """The common shape: permission, lock, guard and change, all in one transaction."""
    require(by, action, recommendation)
    with transaction.atomic():
        rec = _locked(recommendation, expected_version)
        change(rec)
    recommendation.refresh_from_db()
    return recommendation


# Guards: pure checks, also used by forms to explain why an action is unavailable.


def submit_problem(rec: Recommendation) -> str | None:
    if rec.status != Status.IN_PROGRESS:
        return f"Only a recommendation in progress can be submitted for assurance; this one is {rec.get_status_display().lower()}."
    live = rec.evidence.exclude(verdict=Evidence.Verdict.REJECTED)
    if not live.exists():
        return "Add at least one piece of evidence before submitting for assurance."
    if (
        rec.finding.kind == Finding.Kind.CAUSE_OF_CONCERN
        and not live.filter(category=Evidence.Category.OUTCOME).exists()
    ):
        return (
            "A cause of concern needs evidence of an outcome for children (for example audited response "
            "times), not only outputs such as training delivered. Add outcome evidence first."
        )
    return None


def close_problem(rec: Recommendation, by: User) -> str | None:
    if rec.status != Status.AWAITING_ASSURANCE:
        return (
            f"Only a recommendation awaiting assurance can be closed; this one is {rec.get_status_display().lower()}."
        )
    if rec.owner_id is not None and rec.owner_id == by.pk:
        return "You own this recommendation, so another assurance reviewer must close it (four eyes)."
    pending = rec.evidence.filter(verdict=Evidence.Verdict.PENDING).count()
    if pending:
        return f"{pending} evidence item(s) still await a verdict; accept or reject them before closing."
    accepted = rec.evidence.filter(verdict=Evidence.Verdict.ACCEPTED)
    if not accepted.exists():
        return "At least one piece of evidence must be accepted before closing."
    if (
        rec.finding.kind == Finding.Kind.CAUSE_OF_CONCERN
        and not accepted.filter(category=Evidence.Category.OUTCOME).exists()
    ):
        return "A cause of concern can only be closed with accepted evidence of an outcome for children."
    return None


def _raise_if(problem: str | None) -> None:
    if problem:
        raise WorkflowError(problem)


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
    if rag is not None and rag not in Recommendation.Rag.values:
        raise InvalidInput(f"{rag!r} is not a RAG rating; choose red, amber or green.")
    created: list[ProgressUpdate] = []

    def change(rec: Recommendation) -> None:
        if not rec.is_open:
            raise WorkflowError(
                f"This recommendation is {rec.get_status_display().lower()}; it must be reopened before it can be updated."
            )
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
            _event(rec, Event.RAG_CHANGED, by, rec.get_rag_display(), Recommendation.Rag(rag).label)
            rec.rag = rag
            fields.append("rag")
        if review_completed:
            new_due = timezone.localdate() + dt.timedelta(days=rec.review_interval_days)
            _event(rec, Event.REVIEW_COMPLETED, by, rec.next_review_due, new_due)
            rec.next_review_due = new_due
            fields.append("next_review_due")
        _save(rec, by, "Progress update", fields)

    _apply(recommendation, by, Action.UPDATE, expected_version, change)
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
    if category not in Evidence.Category.values:
        raise InvalidInput("Say whether this evidence shows an output or an outcome.")
    content = {Evidence.Kind.FILE: upload, Evidence.Kind.LINK: link, Evidence.Kind.NOTE: note}
    if kind not in content:
        raise InvalidInput("Evidence is a file, a link or a note.")
    if not content[kind]:
        raise InvalidInput(f"Provide the {Evidence.Kind(kind).label.lower()} for this evidence.")
    created: list[Evidence] = []

    def change(rec: Recommendation) -> None:
        if not rec.is_open:
            raise WorkflowError(f"Evidence cannot be added to a {rec.get_status_display().lower()} recommendation.")
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
    return created[0]


def submit_for_assurance(
    recommendation: Recommendation, *, by: User, expected_version: int | None = None
) -> Recommendation:
    def change(rec: Recommendation) -> None:
        _raise_if(submit_problem(rec))
        _event(rec, Event.SUBMITTED, by, rec.get_status_display(), Status.AWAITING_ASSURANCE.label)
        rec.status = Status.AWAITING_ASSURANCE
        _save(rec, by, "Submitted for assurance", ["status"])

    return _apply(recommendation, by, Action.SUBMIT, expected_version, change)


def review_evidence(
    evidence: Evidence, *, by: User, accept: bool, reason: str = "", expected_version: int | None = None
) -> Evidence:
    """An assurance reviewer's verdict on one piece of evidence."""
    recommendation = evidence.recommendation
    if not accept:
        reason = _need_reason(reason, "rejecting evidence")

    def change(rec: Recommendation) -> None:
        item = Evidence.objects.select_for_update().get(pk=evidence.pk, recommendation=rec)
        if item.verdict != Evidence.Verdict.PENDING:
            raise WorkflowError(f"This evidence has already been {item.get_verdict_display().lower()}.")
        if item.added_by_id == by.pk or rec.owner_id == by.pk:
            raise WorkflowError("Evidence must be reviewed by someone other than its owner or author (four eyes).")
        item.verdict = Evidence.Verdict.ACCEPTED if accept else Evidence.Verdict.REJECTED
        item.reviewed_by = by
        item.reviewed_at = timezone.now()
        item.rejection_reason = "" if accept else reason
        item._history_user = by
        item.save()
        action = Event.EVIDENCE_ACCEPTED if accept else Event.EVIDENCE_REJECTED
        _event(rec, action, by, new=item.description[:200], reason=reason)
        _save(rec, by, action.label, [])

    _apply(recommendation, by, Action.REVIEW, expected_version, change)
    evidence.refresh_from_db()
    return evidence


def close(
    recommendation: Recommendation, *, by: User, reason: str = "", expected_version: int | None = None
) -> Recommendation:
    def change(rec: Recommendation) -> None:
        _raise_if(close_problem(rec, by))
        _event(rec, Event.CLOSED, by, rec.get_status_display(), Status.CLOSED.label, reason.strip())
        rec.status = Status.CLOSED
        _save(rec, by, "Closed at assurance", ["status"])

    return _apply(recommendation, by, Action.REVIEW, expected_version, change)


def reject(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    reason = _need_reason(reason, "rejecting the submission")

    def change(rec: Recommendation) -> None:
        if rec.status != Status.AWAITING_ASSURANCE:
            raise WorkflowError("Only a recommendation awaiting assurance can be rejected.")
        _event(rec, Event.REJECTED, by, rec.get_status_display(), Status.IN_PROGRESS.label, reason)
        rec.status = Status.IN_PROGRESS
        _save(rec, by, "Rejected at assurance", ["status"])

    return _apply(recommendation, by, Action.REVIEW, expected_version, change)


def reopen(
    recommendation: Recommendation, *, by: User, reason: str, expected_version: int | None = None
) -> Recommendation:
    reason = _need_reason(reason, "reopening")

    def change(rec: Recommendation) -> None:
        if rec.status != Status.CLOSED:
            raise WorkflowError("Only a closed recommendation can be reopened.")
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
        if not rec.is_open:
            raise WorkflowError(f"A {rec.get_status_display().lower()} recommendation cannot be superseded.")
        if replacement.pk == rec.pk:
            raise WorkflowError("A recommendation cannot supersede itself; choose the one that replaces it.")
        if replacement.organisation_id != rec.organisation_id:
            raise WorkflowError("The replacement must belong to the same organisation.")
        if replacement.status == Status.SUPERSEDED:
            raise WorkflowError("The replacement is itself superseded; choose the recommendation that is in force.")
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
    def change(rec: Recommendation) -> None:
        if owner is not None:
            if not owner.is_active:
                raise WorkflowError(f"{owner} is no longer active and cannot own a recommendation.")
            if owner.organisation_id != rec.organisation_id:
                raise WorkflowError(f"{owner} belongs to another organisation and cannot own this recommendation.")
        if rec.owner_id == (owner.pk if owner else None):
            return
        _event(rec, Event.OWNER_CHANGED, by, rec.owner or "nobody", owner or "nobody", reason.strip())
        rec.owner = owner
        _save(rec, by, "Owner changed", ["owner"])

    return _apply(recommendation, by, Action.REASSIGN, expected_version, change)


def change_target_date(
    recommendation: Recommendation,
    *,
    by: User,
    target_date: dt.date | None,
    reason: str = "",
    expected_version: int | None = None,
) -> Recommendation:
    def change(rec: Recommendation) -> None:
        if rec.target_date == target_date:
            return
        # Setting the first target date is planning; moving an agreed one needs a reason.
        why = _need_reason(reason, "moving the target date") if rec.target_date else reason.strip()
        _event(rec, Event.TARGET_DATE_CHANGED, by, rec.target_date or "none", target_date or "none", why)
        rec.target_date = target_date
        _save(rec, by, "Target date changed", ["target_date"])

    return _apply(recommendation, by, Action.CHANGE_TARGET_DATE, expected_version, change)


def change_review_interval(
    recommendation: Recommendation, *, by: User, days: int, reason: str = "", expected_version: int | None = None
) -> Recommendation:
    if not isinstance(days, int) or days < 1:
        raise InvalidInput("The review interval must be a whole number of days, at least 1.")

    def change(rec: Recommendation) -> None:
        if rec.review_interval_days == days:
            return
        _event(rec, Event.REVIEW_INTERVAL_CHANGED, by, rec.review_interval_days, days, reason.strip())
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

    def change(rec: Recommendation) -> None:
        changed = [
            name
            for name, value in (("title", title), ("outcome_measure", outcome_measure.strip()))
            if getattr(rec, name) != value
        ]
        if not changed:
            return
        rec.title, rec.outcome_measure = title, outcome_measure.strip()
        _save(rec, by, "Details edited", changed)

    return _apply(recommendation, by, Action.EDIT, expected_version, change)


def create_recommendation(
    finding: Finding, *, by: User | None, interval_days: int | None = None, **details
) -> Recommendation:
    """One recommendation per finding, not started, first review one interval from today."""
    from django.conf import settings

    interval = interval_days or settings.DEFAULT_REVIEW_INTERVAL_DAYS
    with transaction.atomic():
        if Recommendation.objects.filter(finding=finding).exists():
            raise WorkflowError(f"Finding {finding.reference} already has a recommendation.")
        rec = Recommendation(
            finding=finding,
            title=details.get("title") or finding.title,
            outcome_measure=details.get("outcome_measure", ""),
            review_interval_days=interval,
            next_review_due=timezone.localdate() + dt.timedelta(days=interval),
        )
        rec._history_user = by
        rec.save()
        _event(rec, Event.CREATED, by, reason=details.get("reason", ""))
    return rec
