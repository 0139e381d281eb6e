"""The oversight dashboard's figures: aggregate queries only, a fixed number whatever the rows.

Everything is computed from the recommendations a user may see (their organisation), optionally
narrowed to one inspection. Charts are drawn server-side as SVG from the geometry computed here;
the template shows each chart's numbers as a table too.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from tracker import health, permissions
from tracker.models import Evidence, Finding, Inspection, Rag, Recommendation, RecommendationEvent, Status

if TYPE_CHECKING:
    from tracker.models import User

LIST_LIMIT = 20
WEEKS = 12
Event = RecommendationEvent.Action

# GOV.UK Frontend colours. Every bar also has a dark outline and its number written beside it,
# so no figure depends on telling colours apart.
STATUS_COLOURS = {
    Status.NOT_STARTED: "#505a5f",
    Status.IN_PROGRESS: "#1d70b8",
    Status.AWAITING_ASSURANCE: "#4c2c92",
    Status.CLOSED: "#00703c",
    Status.SUPERSEDED: "#b1b4b6",
}
RAG_COLOURS = {Rag.RED: "#d4351c", Rag.AMBER: "#f47738", Rag.GREEN: "#00703c", Rag.NOT_RATED: "#b1b4b6"}


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str
    y: int
    width: int


@dataclass(frozen=True)
class BarChart:
    key: str
    title: str
    description: str
    bars: list[Bar]
    width: int = 640
    label_width: int = 260
    row_height: int = 32

    @property
    def height(self) -> int:
        return self.row_height * len(self.bars) + 8

    @property
    def bar_x(self) -> int:
        return self.label_width


def bar_chart(key: str, title: str, items: list[tuple[str, int, str]]) -> BarChart:
    longest = max((value for _, value, _ in items), default=0)
    room = 640 - 260 - 60  # label column, then bars, then space for the number
    bars = [
        Bar(label, value, colour, 4 + i * 32, round(room * value / longest) if longest else 0)
        for i, (label, value, colour) in enumerate(items)
    ]
    description = "; ".join(f"{label}: {value}" for label, value, _ in items) + "."
    return BarChart(key, title, description, bars)


@dataclass(frozen=True)
class Week:
    start: dt.date
    open_at_end: int
    closed: int


@dataclass(frozen=True)
class ProgressChart:
    """Open recommendations at the end of each week (a line) and those closed in it (bars)."""

    weeks: list[Week]
    width: int = 640
    height: int = 260
    left: int = 48
    bottom: int = 40
    top: int = 16

    @property
    def scale_max(self) -> int:
        return max([1] + [w.open_at_end for w in self.weeks] + [w.closed for w in self.weeks])

    @property
    def plot_height(self) -> int:
        return self.height - self.bottom - self.top

    @property
    def step(self) -> float:
        return (self.width - self.left - 16) / max(1, len(self.weeks))

    def _y(self, value: int) -> float:
        return round(self.top + self.plot_height * (1 - value / self.scale_max), 1)

    @property
    def points(self) -> str:
        return " ".join(
            f"{round(self.left + self.step * (i + 0.5), 1)},{self._y(w.open_at_end)}" for i, w in enumerate(self.weeks)
        )

    @property
    def columns(self) -> list[dict]:
        width = round(self.step * 0.5, 1)
        result = []
        for i, week in enumerate(self.weeks):
            centre = self.left + self.step * (i + 0.5)
            y = self._y(week.closed)
            result.append(
                {
                    "week": week,
                    "x": round(centre - width / 2, 1),
                    "centre": round(centre, 1),
                    "y": y,
                    "height": round(self.top + self.plot_height - y, 1),
                    "width": width,
                    "dot_y": self._y(week.open_at_end),
                    "label": f"{week.start:%d %b}",
                }
            )
        return result

    @property
    def axis_y(self) -> int:
        return self.top + self.plot_height

    @property
    def ticks(self) -> list[dict]:
        top = self.scale_max
        values = sorted({0, top // 2, top})
        return [{"value": v, "y": self._y(v)} for v in values]

    @property
    def description(self) -> str:
        if not self.weeks:
            return "No weeks to show."
        first, last = self.weeks[0], self.weeks[-1]
        closed = sum(w.closed for w in self.weeks)
        return (
            f"Over the {len(self.weeks)} weeks from {first.start:%d %B %Y}, open recommendations went from "
            f"{first.open_at_end} to {last.open_at_end}; {closed} were closed."
        )


@dataclass(frozen=True)
class InspectionRow:
    inspection: Inspection
    total: int
    by_status: dict[str, int]
    by_rag: dict[str, int]
    overdue: int
    missed_target: int


@dataclass(frozen=True)
class ThemeFinding:
    inspection_title: str
    when: str
    reference: str
    title: str
    recommendation_id: int | None


@dataclass
class ThemeRow:
    slug: str
    name: str
    current: list[ThemeFinding] = field(default_factory=list)
    earlier: list[ThemeFinding] = field(default_factory=list)
    inspection_ids: set[int] = field(default_factory=set)

    @property
    def inspection_count(self) -> int:
        return len(self.inspection_ids)


@dataclass
class Dashboard:
    today: dt.date
    inspection: Inspection | None
    inspections: list[Inspection]
    rows: list[InspectionRow]
    total: int
    by_status: list[tuple[str, str, int]]
    by_rag: list[tuple[str, str, int]]
    overdue_count: int
    overdue: list[Recommendation]
    missed_count: int
    missed: list[Recommendation]
    awaiting_count: int
    awaiting: list[Recommendation]
    weeks: list[Week]
    themes: list[ThemeRow]
    status_chart: BarChart | None = None
    rag_chart: BarChart | None = None
    progress_chart: ProgressChart | None = None
    theme_chart: BarChart | None = None
    sweep_stale: bool = False  # no reminder sweep in over a day: reminders may not be going out


def _counts_by_inspection(scope: QuerySet[Recommendation], today: dt.date) -> dict[int, dict]:
    """One grouped query: every count the dashboard shows, per inspection."""
    aggregates = {"total": Count("pk")}
    for value in Status.values:
        aggregates[f"status_{value}"] = Count("pk", filter=Q(status=value))
    for value in Rag.values:
        aggregates[f"rag_{value or 'none'}"] = Count("pk", filter=Q(rag=value))
    aggregates["overdue"] = Count("pk", filter=Recommendation.overdue_q(today))
    aggregates["missed"] = Count("pk", filter=Recommendation.target_missed_q(today))
    grouped = scope.order_by().values("finding__inspection_id").annotate(**aggregates)
    return {row["finding__inspection_id"]: row for row in grouped}


def _weeks(scope: QuerySet[Recommendation], today: dt.date, count: int = WEEKS) -> list[Week]:
    """Open at the end of each week and closed during it, replayed from two grouped queries."""
    this_monday = today - dt.timedelta(days=today.weekday())
    starts = [this_monday - dt.timedelta(weeks=count - 1 - i) for i in range(count)]
    tz = timezone.get_current_timezone()
    created: dict[dt.date, int] = {}
    for row in (
        scope.order_by().annotate(week=TruncWeek("created_at", tzinfo=tz)).values("week").annotate(n=Count("pk"))
    ):
        created[_as_date(row["week"])] = created.get(_as_date(row["week"]), 0) + row["n"]
    changes: dict[tuple[dt.date, str], int] = {}
    events = (
        RecommendationEvent.objects.filter(
            recommendation__in=scope.order_by().values("pk"),
            action__in=[Event.CLOSED, Event.REOPENED, Event.SUPERSEDED],
        )
        .annotate(week=TruncWeek("at", tzinfo=tz))
        .values("week", "action")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in events:
        key = (_as_date(row["week"]), row["action"])
        changes[key] = changes.get(key, 0) + row["n"]

    def up_to(counts: dict, start: dt.date, action: str | None = None) -> int:
        return sum(
            n
            for key, n in counts.items()
            if (key if action is None else key[0]) <= start and (action is None or key[1] == action)
        )

    weeks = []
    for start in starts:
        open_at_end = (
            up_to(created, start)
            - up_to(changes, start, Event.CLOSED)
            + up_to(changes, start, Event.REOPENED)
            - up_to(changes, start, Event.SUPERSEDED)
        )
        weeks.append(Week(start, max(0, open_at_end), changes.get((start, Event.CLOSED), 0)))
    return weeks


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def _year(inspection_title: str, when: str) -> str:
    found = re.search(r"(19|20)\d{2}", when or "") or re.search(r"(19|20)\d{2}", inspection_title)
    return found.group(0) if found else ""


def _themes(user: User, inspection: Inspection | None) -> list[ThemeRow]:
    """Each theme of today's findings, with the earlier findings that raised the same theme."""
    links = (
        Finding.themes.through.objects.filter(finding__inspection__organisation_id=user.organisation_id)
        .values(
            "theme__slug",
            "theme__name",
            "finding__reference",
            "finding__title",
            "finding__inspection_id",
            "finding__inspection__title",
            "finding__inspection__tracked",
            "finding__inspection__published_text",
            "finding__recommendation__id",
        )
        .order_by("theme__name", "finding__inspection_id", "finding__reference")
    )
    rows: dict[str, ThemeRow] = {}
    for link in links:
        row = rows.setdefault(link["theme__slug"], ThemeRow(link["theme__slug"], link["theme__name"]))
        current = (
            link["finding__inspection_id"] == inspection.pk
            if inspection is not None
            else link["finding__inspection__tracked"]
        )
        item = ThemeFinding(
            link["finding__inspection__title"],
            _year(link["finding__inspection__title"], link["finding__inspection__published_text"]),
            link["finding__reference"],
            link["finding__title"],
            link["finding__recommendation__id"],
        )
        (row.current if current else row.earlier).append(item)
        row.inspection_ids.add(link["finding__inspection_id"])
    result = [row for row in rows.values() if row.current]
    for row in result:
        row.earlier.sort(key=lambda f: (f.when, f.inspection_title, f.reference))
    result.sort(key=lambda r: (-r.inspection_count, r.name))
    return result


def build(user: User, *, inspection: Inspection | None = None, today: dt.date | None = None) -> Dashboard:
    """The dashboard for what ``user`` may see, overall or for one of their inspections."""
    today = today or timezone.localdate()
    scope = permissions.visible_recommendations(user)
    # Every inspection of the organisation (a short list): the selector offers the tracked ones.
    everything = list(permissions.visible_inspections(user).order_by("-published", "-pk"))
    inspections = [i for i in everything if i.tracked]
    if inspection is not None:
        scope = scope.filter(finding__inspection=inspection)
    counts = _counts_by_inspection(scope, today)
    rows = [
        InspectionRow(
            item,
            row["total"],
            {value: row[f"status_{value}"] for value in Status.values},
            {value: row[f"rag_{value or 'none'}"] for value in Rag.values},
            row["overdue"],
            row["missed"],
        )
        for item in everything
        if (row := counts.get(item.pk))
    ]

    def total(key: str) -> int:
        return sum(row[key] for row in counts.values())

    by_status = [(value, label, total(f"status_{value}")) for value, label in Status.choices]
    by_rag = [(value, label, total(f"rag_{value or 'none'}")) for value, label in Rag.choices]
    overdue = list(scope.overdue(today).with_related().order_by("next_review_due", "pk")[:LIST_LIMIT])
    missed = list(scope.target_missed(today).with_related().order_by("target_date", "pk")[:LIST_LIMIT])
    awaiting = list(
        scope.filter(status=Status.AWAITING_ASSURANCE)
        .with_related()
        .annotate(pending_evidence=Count("evidence", filter=Q(evidence__verdict=Evidence.Verdict.PENDING)))
        .order_by("updated_at", "pk")[:LIST_LIMIT]
    )
    weeks = _weeks(scope, today)
    themes = _themes(user, inspection)
    board = Dashboard(
        today=today,
        inspection=inspection,
        inspections=inspections,
        rows=rows,
        total=total("total"),
        by_status=by_status,
        by_rag=by_rag,
        overdue_count=total("overdue"),
        overdue=overdue,
        missed_count=total("missed"),
        missed=missed,
        awaiting_count=total(f"status_{Status.AWAITING_ASSURANCE}"),
        awaiting=awaiting,
        weeks=weeks,
        themes=themes,
        sweep_stale=health.sweep_is_stale(),
    )
    board.status_chart = bar_chart(
        "status", "Recommendations by status", [(label, n, STATUS_COLOURS[value]) for value, label, n in by_status]
    )
    board.rag_chart = bar_chart(
        "rag", "Recommendations by RAG rating", [(label, n, RAG_COLOURS[value]) for value, label, n in by_rag]
    )
    board.progress_chart = ProgressChart(weeks)
    board.theme_chart = bar_chart(
        "themes",
        "Inspections that raised each theme",
        [(row.name, row.inspection_count, "#1d70b8") for row in themes],
    )
    return board
