"""Closure follows outcomes: periods, whether a measure is at target, and what holds a recommendation open.

Pure functions over rows already read: ``tracker.policy`` asks :func:`gate_problem` when deciding
whether a recommendation may close, the recommendation page draws the same standings, and nothing
here queries the database except :func:`load_measures`.

A measure is at target when its latest ``OUTCOME_PERIODS_REQUIRED`` (default 3) data points are for
consecutive periods (no month or quarter missing between them) and every one of them meets the target
in the measure's direction. A gated recommendation with no measure is not at target: an override is
the way to close it without one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, Prefetch

from tracker.models import Finding, MeasureDataPoint, MeasureFrequency, OutcomeMeasure

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tracker.models import Recommendation

MONTHS_PER_PERIOD = {MeasureFrequency.MONTHLY: 1, MeasureFrequency.QUARTERLY: 3}


def periods_required() -> int:
    return settings.OUTCOME_PERIODS_REQUIRED


def is_gated(rec: Recommendation) -> bool:
    """A cause of concern always; any other recommendation when a lead has marked it."""
    return rec.outcome_gated or rec.finding.kind == Finding.Kind.CAUSE_OF_CONCERN


def period_start(day: dt.date, frequency: str) -> dt.date:
    """The first day of the month (monthly) or of the calendar quarter (quarterly) that holds ``day``."""
    step = MONTHS_PER_PERIOD[MeasureFrequency(frequency)]
    return dt.date(day.year, (day.month - 1) // step * step + 1, 1)


def next_period(period: dt.date, frequency: str) -> dt.date:
    months = period.year * 12 + period.month - 1 + MONTHS_PER_PERIOD[MeasureFrequency(frequency)]
    return dt.date(months // 12, months % 12 + 1, 1)


def period_label(period: dt.date, frequency: str) -> str:
    if frequency == MeasureFrequency.QUARTERLY:
        return f"Q{(period.month - 1) // 3 + 1} {period.year}"
    return f"{period:%B %Y}"


def number(value: Decimal | int | None) -> str:
    """A value as people write it: 90, not 90.0000."""
    if value is None:
        return ""
    text = f"{Decimal(value).normalize():f}"
    return text


def with_unit(value: Decimal | int, unit: str) -> str:
    return f"{number(value)}{unit}" if unit == "%" else f"{number(value)} {unit}".rstrip()


def target_text(measure: OutcomeMeasure) -> str:
    word = "at most" if measure.direction == OutcomeMeasure.Direction.LOWER else "at least"
    return f"{word} {with_unit(measure.target_value, measure.unit)}"


@dataclass(frozen=True)
class Standing:
    """Where one measure stands against the closure rule."""

    measure: OutcomeMeasure
    recent: list[MeasureDataPoint]  # the latest N data points, oldest first
    at_target: bool
    problem: str  # why it holds the recommendation open ("" when at target)


def standing(measure: OutcomeMeasure, points: list[MeasureDataPoint], required: int | None = None) -> Standing:
    """``points``: the measure's data points, in any order: all of them, or at least its latest ``required``."""
    required = required or periods_required()
    ordered = sorted(points, key=lambda p: p.period)
    recent = ordered[-required:]
    name = f"“{measure.name}”"
    if len(recent) < required:
        have = f"{len(recent)} period{'s' if len(recent) != 1 else ''} of data"
        return Standing(
            measure,
            recent,
            False,
            f"{name} has {have}; it must meet its target ({target_text(measure)}) for the last {required} periods.",
        )
    for earlier, later in itertools.pairwise(recent):
        if next_period(earlier.period, measure.frequency) != later.period:
            return Standing(
                measure,
                recent,
                False,
                f"{name} has no value for {period_label(next_period(earlier.period, measure.frequency), measure.frequency)}; "
                f"it must meet its target for the last {required} periods in a row.",
            )
    met = sum(1 for point in recent if measure.meets_target(point.value))
    if met < required:
        latest = recent[-1]
        return Standing(
            measure,
            recent,
            False,
            f"{name} met its target ({target_text(measure)}) in {met} of the last {required} periods "
            f"(latest: {with_unit(latest.value, measure.unit)} in {period_label(latest.period, measure.frequency)}).",
        )
    return Standing(measure, recent, True, "")


LATEST_POINTS = "latest_points"


def points_of(measure: OutcomeMeasure) -> list[MeasureDataPoint]:
    """The measure's data points as loaded (:func:`load_measures`, :func:`measures_prefetch`: its latest ones),
    oldest first; all of them, read now, for a measure loaded without them."""
    loaded = getattr(measure, LATEST_POINTS, None)
    return sorted(measure.data_points.all() if loaded is None else loaded, key=lambda point: point.period)


def standings(measures: Iterable[OutcomeMeasure], required: int | None = None) -> list[Standing]:
    """Each measure with (at least) its latest ``required`` data points prefetched (:func:`load_measures`)."""
    return [standing(measure, points_of(measure), required) for measure in measures]


def _latest_points(limit: int) -> Prefetch:
    """Each measure's latest ``limit`` data points only, however long its history: the gate needs the last N
    periods and the chart its window, never the rest. Still one query for all the measures (Django filters a
    sliced prefetch with a row number per measure)."""
    # A sliced prefetch must go to its own attribute: Django cannot file a slice under the related manager.
    latest = MeasureDataPoint.objects.order_by("-period", "-pk")[:limit]
    return Prefetch("data_points", queryset=latest, to_attr=LATEST_POINTS)


GATE_MEASURES = "gate_measures"


def measures_prefetch() -> Prefetch:
    """Recommendations' measures with the data points the gate reads, for a list: two queries per page, and
    memory bounded by the number of measures, not by their history. As a plain list in ``GATE_MEASURES``:
    filed under the related manager, Django would build a queryset for every row of the page."""
    measures = OutcomeMeasure.objects.select_related("supplier").prefetch_related(_latest_points(periods_required()))
    return Prefetch("measures", queryset=measures, to_attr=GATE_MEASURES)


def load_measures(rec: Recommendation, periods: int = 0) -> list[OutcomeMeasure]:
    """A recommendation's measures with their latest data points (enough for the gate, and ``periods`` for a
    chart): two queries however many there are. ``point_count`` is each measure's number of data points."""
    limit = max(periods, periods_required())
    return list(
        OutcomeMeasure.objects.filter(recommendation_id=rec.pk)
        .select_related("supplier")
        .annotate(point_count=Count("data_points"))
        .order_by("name", "pk")
        .prefetch_related(_latest_points(limit))
    )


def gate_problem(rec: Recommendation, measures: list[OutcomeMeasure], overridden: bool) -> str | None:
    """Why an outcome-gated recommendation may not close yet, naming each measure that holds it open."""
    if not is_gated(rec) or overridden:
        return None
    why = "A cause of concern" if rec.finding.kind == Finding.Kind.CAUSE_OF_CONCERN else "This recommendation"
    escape = "or an assurance reviewer can record an override with a reason."
    if not measures:
        return (
            f"{why} closes only when its outcome measures have met their targets for the last "
            f"{periods_required()} periods, and it has no outcome measure yet: add one, {escape}"
        )
    holding = [s.problem for s in standings(measures) if not s.at_target]
    if not holding:
        return None
    return f"{why} closes only when its outcome measures are at target. Held open: {' '.join(holding)} Or {escape[3:]}"


def off_track(recommendations, limit: int) -> tuple[int, list[OutcomeMeasure]]:
    """Measures of open ``recommendations`` whose latest value is not at target: how many, and the first
    ``limit`` (soonest review first). One query, whatever the number of measures and data points: the count
    is a window over the rows before the limit."""
    from django.db.models import F, OuterRef, Q, Subquery, Window

    from tracker.models import Recommendation

    latest = MeasureDataPoint.objects.filter(measure=OuterRef("pk")).order_by("-period")
    rows = (
        OutcomeMeasure.objects.filter(recommendation__in=recommendations.filter(Recommendation.open_q()).values("pk"))
        .annotate(
            latest_value=Subquery(latest.values("value")[:1]), latest_period=Subquery(latest.values("period")[:1])
        )
        .filter(
            Q(direction=OutcomeMeasure.Direction.HIGHER, latest_value__lt=F("target_value"))
            | Q(direction=OutcomeMeasure.Direction.LOWER, latest_value__gt=F("target_value"))
        )
    )
    first = list(
        rows.select_related("recommendation__finding")
        .annotate(off_track_total=Window(Count("pk")))
        .order_by("recommendation__next_review_due", "pk")[:limit]
    )
    return (first[0].off_track_total if first else 0), first
