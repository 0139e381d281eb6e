"""The oversight dashboard's figures: aggregate queries only, a fixed number whatever the rows.

Everything is computed from the recommendations a user may see (their organisation), optionally
narrowed to one inspection. Charts are drawn server-side as SVG from the geometry computed here;
the template shows each chart's numbers as a table too.

The page must not grow with the data: every list on it is capped (``LIST_LIMIT``, ``THEME_LIMIT``)
and links to the filtered recommendation list for the rest, and weekly figures are counts against
fixed week boundaries, never dates truncated row by row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Case, Count, F, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker import counts as tracker_counts
from tracker import deadlines, health, outcomes, permissions
from tracker.models import (
    Evidence,
    Inspection,
    OutcomeMeasure,
    Rag,
    Recommendation,
    RecommendationEvent,
    Status,
    Theme,
)

if TYPE_CHECKING:
    from tracker.models import User

LIST_LIMIT = 20
THEME_LIMIT = 5  # open recommendations (and earlier inspections) shown per theme; the rest are a link away
THEME_SCAN_LIMIT = 2000  # how far down the most overdue to look for them (a rare theme may show fewer)
WEEKS = 12
DEADLINE_DAYS = 90  # inspection deadlines (PCC response, action plan, revisit) shown this far ahead
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
    """One of a theme's open recommendations now."""

    reference: str
    title: str
    recommendation_id: int
    review_due: dt.date


@dataclass(frozen=True)
class EarlierInspection:
    """Another inspection that raised the theme, and in how many findings."""

    title: str
    when: str
    findings: int


@dataclass
class ThemeRow:
    """A theme: its findings now (a count, and the most overdue few) and the other inspections that raised it."""

    slug: str
    name: str
    current_count: int = 0
    inspection_count: int = 0
    current: list[ThemeFinding] = field(default_factory=list)
    earlier: list[EarlierInspection] = field(default_factory=list)
    more_earlier: int = 0


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
    # (inspection, label, date, days left) of the deadlines within DEADLINE_DAYS (tracker.deadlines).
    deadlines: list[tuple[Inspection, str, dt.date, int]] = field(default_factory=list)
    # Issue 16: outcome measures whose latest value is not at target (open recommendations only).
    off_track_count: int = 0
    off_track: list = field(default_factory=list)
    theme_limit: int = THEME_LIMIT


def _week_edges(today: dt.date, count: int = WEEKS) -> tuple[list[dt.date], list[dt.datetime]]:
    """The Mondays of the last ``count`` weeks (this one last), and the local midnights that bound them."""
    this_monday = today - dt.timedelta(days=today.weekday())
    starts = [this_monday - dt.timedelta(weeks=count - 1 - i) for i in range(count)]
    tz = timezone.get_current_timezone()
    days = [*starts, this_monday + dt.timedelta(weeks=1)]
    return starts, [timezone.make_aware(dt.datetime.combine(day, dt.time.min), tz) for day in days]


def _counts_by_inspection(
    scope: QuerySet[Recommendation],
    today: dt.date,
    *,
    organisation_id: int | None = None,
    inspection_id: int | None = None,
) -> dict[int, dict]:
    """Every count the dashboard shows, per inspection.

    Given ``organisation_id`` (``scope`` is all of its recommendations, or of ``inspection_id``), the counts by status and RAG are the kept
    ones (``tracker.counts``: a few rows, whatever the recommendations), and only what depends on today
    (overdue, target missed) is counted, from the indexes on those dates. Otherwise one grouped query,
    by inspection, status and RAG (at most inspections x 5 x 4 rows), added up here: a filtered count per
    status and per RAG value cost a comparison per row each, more than the grouping.
    """
    zero = {"total": 0, "overdue": 0, "missed": 0}
    zero |= {f"status_{value}": 0 for value in Status.values} | {f"rag_{value or 'none'}": 0 for value in Rag.values}
    counts: dict[int, dict] = {}
    if organisation_id is not None:
        only = None if inspection_id is None else [inspection_id]
        for item, status, rag, n in tracker_counts.by_inspection(organisation_id, only):
            inspection = counts.setdefault(item, dict(zero))
            inspection["total"] += n
            inspection[f"status_{status}"] += n
            inspection[f"rag_{rag or 'none'}"] += n
        # Each from its index on (organisation, status or date, ..., inspection) alone, in one query. Grouped by
        # "inspection + 0", not the column itself: SQLite would otherwise read the whole of an index ordered by
        # inspection (rec_org_insp_due_idx), and every row besides, to group without sorting (50 ms at 50,000).
        overdue, missed = (
            scope.filter(when)
            .order_by()
            .annotate(key=Value(key), by=F("inspection_id") + 0)
            .values("key", "by")
            .annotate(n=Count("pk"))
            for key, when in (
                ("overdue", Recommendation.overdue_q(today)),
                ("missed", Recommendation.target_missed_q(today)),
            )
        )
        for row in _recommendations_first(overdue.union(missed, all=True)):
            counts.setdefault(row["by"], dict(zero))[row["key"]] += row["n"]
        return counts
    grouped = (
        scope.order_by()
        .values("inspection_id", "status", "rag")
        .annotate(
            n=Count("pk"),
            overdue=Count("pk", filter=Recommendation.overdue_q(today)),
            missed=Count("pk", filter=Recommendation.target_missed_q(today)),
        )
    )
    for row in _recommendations_first(grouped):
        inspection = counts.setdefault(row["inspection_id"], dict(zero))
        inspection["total"] += row["n"]
        inspection[f"status_{row['status']}"] += row["n"]
        inspection[f"rag_{row['rag'] or 'none'}"] += row["n"]
        inspection["overdue"] += row["overdue"]
        inspection["missed"] += row["missed"]
    return counts


def _week_of(field_name: str, edges: list[dt.datetime]) -> Case:
    """0 before the first boundary, i between boundaries i-1 and i, len(edges) after the last: one
    expression to group by (thirteen filtered counts cost more to build than to run)."""
    return Case(
        *(When(**{f"{field_name}__lt": edge}, then=Value(i)) for i, edge in enumerate(edges)),
        default=Value(len(edges)),
    )


def _before_each(groups: dict[int, int], edges: list[dt.datetime]) -> list[int]:
    """From counts per ``_week_of`` group, how many were before each boundary."""
    return [sum(n for group, n in groups.items() if group <= i) for i in range(len(edges))]


def _created_before(scope: QuerySet[Recommendation], total: int, edges: list[dt.datetime]) -> list[int]:
    """How many existed before each week boundary: all but those created since, which the index on
    (organisation, created_at) finds without reading the years of older rows (a count per row per week,
    thirteen of them, cost more than every other count of the page together)."""
    since = (
        scope.order_by()
        .filter(created_at__gte=edges[0])
        .annotate(week=_week_of("created_at", edges))
        .values("week")
        .annotate(n=Count("pk"))
    )
    groups = {row["week"]: row["n"] for row in since}
    created_since = sum(groups.values())
    return [total - created_since + before for before in _before_each(groups, edges)]


def _recommendations_first(queryset: QuerySet) -> Iterator[dict]:
    """The rows of ``queryset`` (recommendations joined to their findings, or a union of such), read
    recommendation first, a chunk at a time: a reader that stops early leaves SQLite's rest unread.

    SQLite's planner starts such a join from the findings' index and looks each recommendation up by
    finding, then its row: three lookups a recommendation, 2x slower at 50,000 than reading the
    recommendations in order and each one's finding by id (and, for one inspection, it reads all of its
    findings and sorts them, where the recommendations in review order stop at the first few).
    ``CROSS JOIN`` is SQLite's documented way to fix the order of a join (same rows as ``INNER JOIN``);
    PostgreSQL plans its joins by itself.
    """
    connection = connections[queryset.db]
    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        return
    if connection.vendor == "sqlite" and sql.startswith("SELECT"):
        sql = sql.replace(' INNER JOIN "tracker_finding" ON (', ' CROSS JOIN "tracker_finding" ON (')
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(200):
            yield from (dict(zip(names, row, strict=True)) for row in rows)


WEEK_ACTIONS = (Event.CLOSED, Event.REOPENED, Event.SUPERSEDED)


def _weeks(
    events: QuerySet[RecommendationEvent], starts: list[dt.date], edges: list[dt.datetime], created: list[int]
) -> list[Week]:
    """Open at the end of each week and closed during it, replayed from counts before each boundary.

    ``created[i]`` is how many recommendations existed before ``edges[i]``; one grouped query counts
    the closures, reopenings and supersessions between boundaries the same way (range comparisons an
    index on the event's time can serve, not a date truncated per row).
    """
    groups: dict[str, dict[int, int]] = {action: {} for action in WEEK_ACTIONS}
    for row in (
        events.filter(action__in=WEEK_ACTIONS)
        .order_by()
        .annotate(week=_week_of("at", edges))
        .values("action", "week")
        .annotate(n=Count("pk"))
    ):
        groups[row["action"]][row["week"]] = row["n"]
    before = {f"{action}_{i}": n for action in WEEK_ACTIONS for i, n in enumerate(_before_each(groups[action], edges))}

    def open_before(i: int) -> int:
        return (
            created[i]
            - before[f"{Event.CLOSED}_{i}"]
            + before[f"{Event.REOPENED}_{i}"]
            - before[f"{Event.SUPERSEDED}_{i}"]
        )

    return [
        Week(start, max(0, open_before(i + 1)), before[f"{Event.CLOSED}_{i + 1}"] - before[f"{Event.CLOSED}_{i}"])
        for i, start in enumerate(starts)
    ]


def _year(inspection_title: str, when: str) -> str:
    found = re.search(r"(19|20)\d{2}", when or "") or re.search(r"(19|20)\d{2}", inspection_title)
    return found.group(0) if found else ""


def _most_overdue_by_theme(
    scope: QuerySet[Recommendation], now_ids: list[int], theme_ids: set[int]
) -> dict[int, list[ThemeFinding]]:
    """The first ``THEME_LIMIT`` open recommendations of each theme, most overdue first.

    One query walking the open recommendations in review-date order (the order an index keeps), stopping
    once every theme has its few or ``THEME_SCAN_LIMIT`` rows have been read: a window function ranking
    every finding of every theme would sort them all on every page view.
    """
    found: dict[int, list[ThemeFinding]] = {theme_id: [] for theme_id in theme_ids}
    wanting = set(theme_ids)
    walk = (
        scope.open()
        .filter(inspection_id__in=now_ids)
        .order_by("next_review_due", "pk")
        .values("finding__themes", "pk", "finding__reference", "title", "next_review_due")[:THEME_SCAN_LIMIT]
    )
    # Not a server-side cursor: on PostgreSQL outside a transaction one runs the whole query WITH HOLD
    # and copies it before the first row (three times as long as running it).
    rows = _recommendations_first(walk)
    for row in rows:
        theme_id = row["finding__themes"]
        if theme_id in wanting:
            due = row["next_review_due"]  # raw SQL: SQLite gives the ISO text Django would have converted
            due = dt.date.fromisoformat(due) if isinstance(due, str) else due
            found[theme_id].append(ThemeFinding(row["finding__reference"], row["title"], row["pk"], due))
            if len(found[theme_id]) == THEME_LIMIT:
                wanting.discard(theme_id)
                if not wanting:
                    break
    rows.close()
    return found


def _themes(
    scope: QuerySet[Recommendation], everything: list[Inspection], inspection: Inspection | None
) -> list[ThemeRow]:
    """Each theme of today's findings: how many, the most overdue few, and the inspections that raised it.

    Two queries whatever the number of findings: the findings per theme and inspection with the themes'
    names (kept, as many rows as themes times inspections), then ``_most_overdue_by_theme``.
    """
    by_id = {item.pk: item for item in everything}
    now_ids = [inspection.pk] if inspection is not None else [item.pk for item in everything if item.tracked]
    # What to sustain (strengths) is not a theme raised against the force: the counts leave them out.
    if tracker_counts.kept():  # kept as findings and their themes change: a few rows, whatever the findings
        groups = tracker_counts.themes_by_inspection(by_id)
    else:
        fresh = tracker_counts.fresh_themes_by_inspection(by_id)
        names = Theme.objects.filter(pk__in={theme_id for theme_id, _, _ in fresh}).in_bulk()
        groups = [(t, i, n, names[t].slug, names[t].name) for t, i, n in fresh]
    rows: dict[int, ThemeRow] = {}
    for theme_id, inspection_id, findings, slug, name in groups:
        row = rows.setdefault(theme_id, ThemeRow(slug, name))
        row.inspection_count += 1
        if inspection_id in now_ids:
            row.current_count += findings
        else:
            item = by_id[inspection_id]
            row.earlier.append(EarlierInspection(item.title, _year(item.title, item.published_text), findings))
    rows = {theme_id: row for theme_id, row in rows.items() if row.current_count}
    overdue = _most_overdue_by_theme(scope, now_ids, set(rows))
    for theme_id, row in rows.items():
        row.current = overdue[theme_id]
        row.earlier.sort(key=lambda earlier: (earlier.when, earlier.title))
        row.more_earlier = max(0, len(row.earlier) - THEME_LIMIT)
        row.earlier = row.earlier[:THEME_LIMIT]
    return sorted(rows.values(), key=lambda r: (-r.inspection_count, r.name))


def build(user: User, *, inspection: Inspection | None = None, today: dt.date | None = None) -> Dashboard:
    """The dashboard for what ``user`` may see, overall or for one of their inspections."""
    today = today or timezone.localdate()
    scope = permissions.visible_recommendations(user)
    # Every inspection of the organisation (a short list): the selector offers the tracked ones.
    everything = list(permissions.visible_inspections(user).order_by("-published", "-pk"))
    inspections = [i for i in everything if i.tracked]
    if inspection is not None:
        scope = scope.filter(inspection=inspection)
    starts, edges = _week_edges(today)
    whole = tracker_counts.kept() and permissions.sees_whole_organisation(user)
    counts = _counts_by_inspection(
        scope,
        today,
        organisation_id=user.organisation_id if whole else None,
        inspection_id=inspection.pk if inspection is not None else None,
    )
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
    # The first few are chosen from the recommendation rows alone, then only they are joined and have
    # their pending evidence counted: not every recommendation awaiting assurance.
    first_awaiting = scope.filter(status=Status.AWAITING_ASSURANCE).order_by("updated_at", "pk").values("pk")
    pending = (
        Evidence.objects.filter(recommendation=OuterRef("pk"), verdict=Evidence.Verdict.PENDING)
        .order_by()
        .values("recommendation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    awaiting = list(
        Recommendation.objects.filter(pk__in=first_awaiting[:LIST_LIMIT])
        .with_related()
        .annotate(pending_evidence=Coalesce(Subquery(pending), 0))
        .order_by("updated_at", "pk")
    )
    # The events of the scope's recommendations: for a whole organisation (or one of its inspections) a
    # join from the events (by their action's index) to their recommendation, not a list of every id in it.
    if whole:
        events = RecommendationEvent.objects.filter(recommendation__organisation_id=user.organisation_id)
        if inspection is not None:
            events = events.filter(recommendation__inspection=inspection)
    else:
        events = RecommendationEvent.objects.filter(recommendation__in=scope.order_by().values("pk"))
    weeks = _weeks(events, starts, edges, _created_before(scope, total("total"), edges))
    themes = _themes(scope, everything, inspection)
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
        deadlines=[
            (item, label, date, (date - today).days)
            for item, label, date in deadlines.upcoming(user.organisation_id, DEADLINE_DAYS, today=today)
            if inspection is None or item.pk == inspection.pk
        ],
    )
    # Only the recommendations with a measure can have one off track: narrowed to them first, the query
    # starts from the measures (few) instead of listing every open recommendation's id.
    with_measures = scope.filter(pk__in=OutcomeMeasure.objects.values("recommendation_id"))
    board.off_track_count, board.off_track = outcomes.off_track(with_measures, LIST_LIMIT)
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
