"""The board pack: one inspection's position for a board or scrutiny meeting, as a page and a PDF.

The PDF is the same HTML body rendered by WeasyPrint, with its own print stylesheet inline and no
fetching of anything outside the document (so a crafted link cannot make the server fetch a URL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.utils import timezone

from tracker import permissions
from tracker.models import Evidence, Inspection, ProgressUpdate, Rag, Recommendation, RecommendationEvent, Status

if TYPE_CHECKING:
    from tracker.models import User

DEFAULT_SINCE_DAYS = 90
Event = RecommendationEvent.Action
CHANGE_ACTIONS = (
    Event.OWNER_CHANGED,
    Event.TARGET_DATE_CHANGED,
    # Issue 16: moved plan-action dates, and outcome overrides and gating, each with its reason.
    Event.PLAN_ACTION_DUE_DATE,
    Event.OUTCOME_GATE_OVERRIDDEN,
    Event.OUTCOME_GATE_CHANGED,
)


@dataclass
class BoardPack:
    inspection: Inspection
    since: dt.date
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


def default_since(today: dt.date | None = None) -> dt.date:
    return (today or timezone.localdate()) - dt.timedelta(days=DEFAULT_SINCE_DAYS)


def build(user: User, inspection: Inspection, *, since: dt.date, today: dt.date | None = None) -> BoardPack:
    """Summary counts, every recommendation with its latest update, and owner and target-date changes since."""
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
    changes = list(
        RecommendationEvent.objects.filter(
            recommendation__in=scope.order_by().values("pk"), action__in=CHANGE_ACTIONS, at__gte=since_start
        )
        .select_related("actor", "recommendation__finding")
        .order_by("recommendation__finding__reference", "at", "pk")
    )
    by_status = {value: 0 for value in Status.values}
    by_rag = {value: 0 for value in Rag.values}
    overdue = missed = 0
    for rec in recommendations:
        by_status[rec.status] += 1
        by_rag[rec.rag] += 1
        overdue += rec.is_overdue(today)
        missed += rec.target_missed(today)
    return BoardPack(
        inspection=inspection,
        since=since,
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
    )


def _no_fetching(url: str, *args, **kwargs) -> dict:
    raise ValueError(f"The board pack PDF fetches nothing; refused {url[:80]!r}")


def render_pdf(pack: BoardPack) -> bytes:
    from weasyprint import HTML

    html = render_to_string("tracker/oversight/board_pack_pdf.html", {"pack": pack})
    return HTML(string=html, url_fetcher=_no_fetching).write_pdf()
