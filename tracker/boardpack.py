"""The board pack: one inspection's position for a board or scrutiny meeting, as a page and a PDF.

It opens with an executive summary a board can read in a minute: the counts, what changed in the
period (by default the last ``DEFAULT_SINCE_DAYS`` days, or since a date the reader chooses, such as
the last board meeting), and the exceptions (red ratings, overdue reviews, target dates put back or
passed, with the reasons given; outcome measures off track). Dates are written in words; nothing shows a system placeholder.

The PDF is the same HTML body rendered by WeasyPrint as a tagged PDF/UA-1 document (headings, lists
and tables carry their structure for screen readers), with its own print stylesheet inline and no
fetching of anything outside the document (so a crafted link cannot make the server fetch a URL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Count, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.utils import timezone

from tracker import deadlines, outcomes, permissions
from tracker.models import (
    Evidence,
    Finding,
    Inspection,
    ProgressUpdate,
    Rag,
    Recommendation,
    RecommendationEvent,
    Status,
)
from tracker.sources import quotations_prefetch

if TYPE_CHECKING:
    from tracker.models import User

DEFAULT_SINCE_DAYS = 30
# Outcome measures off track listed by name; the count covers them all (a pack stays readable).
OFF_TRACK_LIMIT = 50
PDF_VARIANT = "pdf/ua-1"  # tagged: WeasyPrint writes the structure tree, the language and the title
Event = RecommendationEvent.Action
CHANGE_ACTIONS = (
    Event.OWNER_CHANGED,
    Event.TARGET_DATE_CHANGED,
    # Issue 16: moved plan-action dates, and outcome overrides and gating, each with its reason.
    Event.PLAN_ACTION_DUE_DATE,
    Event.OUTCOME_GATE_OVERRIDDEN,
    Event.OUTCOME_GATE_CHANGED,
)

# What changed in the period, in the order a board reads it: (action, one, many).
ACTIVITY = (
    (Event.CLOSED, "recommendation closed", "recommendations closed"),
    (Event.SUBMITTED, "submission for assurance", "submissions for assurance"),
    (Event.REJECTED, "submission returned to its owner", "submissions returned to their owners"),
    (Event.REOPENED, "recommendation reopened", "recommendations reopened"),
    (Event.UPDATE, "progress update", "progress updates"),
    (Event.EVIDENCE_ADDED, "piece of evidence added", "pieces of evidence added"),
    (Event.EVIDENCE_ACCEPTED, "piece of evidence accepted", "pieces of evidence accepted"),
    (Event.EVIDENCE_REJECTED, "piece of evidence rejected", "pieces of evidence rejected"),
    (Event.RAG_CHANGED, "RAG rating changed", "RAG ratings changed"),
    (Event.OWNER_CHANGED, "owner changed", "owners changed"),
    (Event.TARGET_DATE_CHANGED, "target date set or moved", "target dates set or moved"),
)


def in_words(value: dt.date | dt.datetime | None) -> str:
    """15 January 2025: the way a board paper writes a date."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return f"{value.day} {value:%B %Y}"


def _value_in_words(action: str, value: str) -> str:
    """An event's stored old or new value, as a reader would say it."""
    if action in (Event.TARGET_DATE_CHANGED, Event.PLAN_ACTION_DUE_DATE):
        if value in ("", "none"):
            return "No target date"
        try:
            return in_words(dt.date.fromisoformat(value))
        except ValueError:
            return value
    if action == Event.OWNER_CHANGED and value in ("", "nobody"):
        return "No owner"
    return value


def _date_or_none(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Slip:
    """An open recommendation whose target date was put back, or has passed, with the reason given."""

    rec: Recommendation
    first_target: dt.date | None  # the earliest agreed date, if it has been put back
    reason: str  # the latest reason given for putting it back ("" if none was needed or given)
    passed: bool  # the current target date is before today

    @property
    def first_target_text(self) -> str:
        return in_words(self.first_target)


@dataclass
class BoardPack:
    inspection: Inspection
    since: dt.date
    since_is_default: bool
    generated_at: dt.datetime
    today: dt.date
    by_status: list[tuple[str, str, int]]
    by_rag: list[tuple[str, str, int]]
    total: int
    overdue: int
    missed_target: int
    recommendations: list[Recommendation]
    changes: list[RecommendationEvent]
    awaiting: list[Recommendation]
    activity: list[tuple[int, str]] = field(default_factory=list)
    reds: list[Recommendation] = field(default_factory=list)
    overdue_list: list[Recommendation] = field(default_factory=list)
    slipped: list[Slip] = field(default_factory=list)
    # What to sustain (never tracked) and the clocks that follow publication, each with its status today.
    strengths: list[Finding] = field(default_factory=list)
    deadlines: list[tuple[deadlines.Deadline, str]] = field(default_factory=list)
    # Issue 16: measures of open recommendations whose latest value is not at target (as on the dashboard).
    off_track_count: int = 0
    off_track: list = field(default_factory=list)

    @property
    def period(self) -> str:
        """How the summary names its period."""
        if self.since_is_default:
            return f"in the last {DEFAULT_SINCE_DAYS} days (since {in_words(self.since)})"
        return f"since {in_words(self.since)}"

    @property
    def open_count(self) -> int:
        return sum(n for value, _, n in self.by_status if value in Recommendation.OPEN_STATUSES)

    @property
    def exception_count(self) -> int:
        return len(self.reds) + len(self.overdue_list) + len(self.slipped)


def default_since(today: dt.date | None = None) -> dt.date:
    return (today or timezone.localdate()) - dt.timedelta(days=DEFAULT_SINCE_DAYS)


def build(user: User, inspection: Inspection, *, since: dt.date, today: dt.date | None = None) -> BoardPack:
    """Summary counts, activity and exceptions (outcome measures off track among them), every recommendation
    with its latest update, and the changes since ``since`` that need a reason (owners, target dates, plan
    actions' due dates, outcome gating and overrides): a fixed number of queries, whatever the number of rows,
    actions and data points."""
    today = today or timezone.localdate()
    scope = permissions.visible_recommendations(user).filter(finding__inspection=inspection)
    latest = ProgressUpdate.objects.filter(recommendation=OuterRef("pk")).order_by("-created_at", "-pk")
    recommendations = list(
        scope.with_related()
        .annotate(
            latest_update_at=Subquery(latest.values("created_at")[:1]),
            latest_update_text=Subquery(latest.values("narrative")[:1]),
            pending_evidence=Count("evidence", filter=Q(evidence__verdict=Evidence.Verdict.PENDING)),
            accepted_evidence=Count("evidence", filter=Q(evidence__verdict=Evidence.Verdict.ACCEPTED)),
        )
        .order_by("finding__reference")
    )
    since_start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    in_scope = scope.order_by().values("pk")
    changes = list(
        RecommendationEvent.objects.filter(recommendation__in=in_scope, action__in=CHANGE_ACTIONS, at__gte=since_start)
        .select_related("actor", "recommendation__finding")
        .order_by("recommendation__finding__reference", "at", "pk")
    )
    for event in changes:
        event.old_text = _value_in_words(event.action, event.old_value)
        event.new_text = _value_in_words(event.action, event.new_value)
    counted = dict(
        RecommendationEvent.objects.filter(recommendation__in=in_scope, at__gte=since_start)
        .order_by()
        .values_list("action")
        .annotate(n=Count("pk"))
        .values_list("action", "n")
    )
    activity = [
        (counted[action], one if counted[action] == 1 else many)
        for action, one, many in ACTIVITY
        if counted.get(action)
    ]

    by_status = {value: 0 for value in Status.values}
    by_rag = {value: 0 for value in Rag.values}
    overdue = missed = 0
    for rec in recommendations:
        by_status[rec.status] += 1
        by_rag[rec.rag] += 1
        overdue += rec.is_overdue(today)
        missed += rec.target_missed(today)
    open_recs = [rec for rec in recommendations if rec.is_open]
    overdue_list = sorted(
        (rec for rec in open_recs if rec.is_overdue(today)), key=lambda rec: (rec.next_review_due, rec.reference)
    )
    for rec in overdue_list:
        rec.days_late = rec.days_overdue(today)
    off_track_count, off_track = outcomes.off_track(scope, OFF_TRACK_LIMIT)
    return BoardPack(
        inspection=inspection,
        since=since,
        since_is_default=since == default_since(today),
        generated_at=timezone.localtime(),
        today=today,
        by_status=[(value, label, by_status[value]) for value, label in Status.choices],
        by_rag=[(value, label, by_rag[value]) for value, label in Rag.choices],
        total=len(recommendations),
        overdue=overdue,
        missed_target=missed,
        recommendations=recommendations,
        changes=changes,
        awaiting=[rec for rec in recommendations if rec.status == Status.AWAITING_ASSURANCE],
        activity=activity,
        reds=[rec for rec in open_recs if rec.rag == Rag.RED],
        overdue_list=overdue_list,
        slipped=_slipped(open_recs, scope, today),
        strengths=list(
            inspection.findings.filter(kind=Finding.Kind.STRENGTH)
            .prefetch_related(quotations_prefetch())
            .order_by("reference")
        ),
        deadlines=[(d, d.status(today)) for d in deadlines.for_inspection(inspection)],
        off_track_count=off_track_count,
        off_track=off_track,
    )


def _slipped(open_recs: list[Recommendation], scope, today: dt.date) -> list[Slip]:
    """Open recommendations whose target date was ever put back, or has passed: one query for them all."""
    dated = scope.open().filter(target_date__isnull=False).order_by().values("pk")
    moves: dict[int, list[RecommendationEvent]] = {}
    for event in RecommendationEvent.objects.filter(
        recommendation__in=dated, action=Event.TARGET_DATE_CHANGED
    ).order_by("at", "pk"):
        moves.setdefault(event.recommendation_id, []).append(event)
    slips = []
    for rec in open_recs:
        if rec.target_date is None:
            continue
        put_back = [
            event
            for event in moves.get(rec.pk, [])
            if (old := _date_or_none(event.old_value)) and (new := _date_or_none(event.new_value)) and new > old
        ]
        passed = rec.target_date < today
        if not (put_back or passed):
            continue
        first = _date_or_none(put_back[0].old_value) if put_back else None
        reason = next((event.reason for event in reversed(put_back) if event.reason), "")
        slips.append(Slip(rec=rec, first_target=first, reason=reason, passed=passed))
    return sorted(slips, key=lambda slip: (slip.rec.target_date, slip.rec.reference))


def _no_fetching(url: str, *args, **kwargs) -> dict:
    raise ValueError(f"The board pack PDF fetches nothing; refused {url[:80]!r}")


def render_pdf(pack: BoardPack) -> bytes:
    from weasyprint import HTML

    html = render_to_string("tracker/oversight/board_pack_pdf.html", {"pack": pack})
    return HTML(string=html, url_fetcher=_no_fetching).write_pdf(pdf_variant=PDF_VARIANT)
