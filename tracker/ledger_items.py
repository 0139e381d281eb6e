"""The reminder ledger's other items: plan actions, outcome measures' data and inspection deadlines.

``tracker.reminders`` plans and delivers; this module says what is due about items that are not a
recommendation's review, in the same two forms as the review rules: ``selections`` as querysets that the
planner inserts from (a constant number of queries, whatever the number of items), and ``still_due`` as
the same test on one row at delivery, on the item as it is now.

| stage | when | to |
| --- | --- | --- |
| plan action due soon | not done, due today or within the lead time (REMINDER_LEAD_DAYS) | the action's owner |
| plan action overdue | not done, the day after its due date, then weekly (REMINDER_OVERDUE_REPEAT_DAYS) | the action's owner |
| measure data due | the last month's or quarter's value is not entered, from the first day of the next | the measure's supplier |
| inspection deadline approaching | 1 to 14 days ahead (``DEADLINE_NOTICE_DAYS``) | the organisation's governance leads |
| inspection deadline due or passed | on the day, or up to 7 days after (``DEADLINE_LATE_DAYS``) | the organisation's governance leads |

Only open recommendations' actions and measures count, and only for a recipient who is active and of the
recommendation's organisation (the review reminders' rules). An action done or given a new date or owner,
a period's data entered, a deadline moved or removed: the row is cancelled at delivery. A deadline that
passed more than a week before any sweep saw it is history, not news, and is never sent (so a first sweep
over old inspections emails nobody about them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from django.db.models import DateField, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.urls import reverse

from tracker.models import (
    PCC_RESPONSE_DAYS,
    Inspection,
    Inspectorate,
    MeasureDataPoint,
    MeasureFrequency,
    OrganisationKind,
    OutcomeMeasure,
    PlanAction,
    Recommendation,
    Reminder,
)
from tracker.outcomes import period_label, period_start
from tracker.predicates import matches

Stage = Reminder.Stage
Deadline = Reminder.Deadline

DEADLINE_NOTICE_DAYS = 14  # "approaching": once, when a deadline first comes within two weeks
DEADLINE_LATE_DAYS = 7  # "due or passed": on the day; a sweep that missed the day still tells within a week


class AddDays(Func):
    """A date ``days`` days after a date column, in SQL."""

    output_field = DateField()

    def __init__(self, date, days: int) -> None:
        super().__init__(date)
        self.days = int(days)

    def as_sql(self, compiler, connection, **extra_context):  # PostgreSQL: date + integer is a date
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"({sql} + {self.days})", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"date({sql}, '{self.days:+d} days')", params


def _none(field) -> Cast:
    # Typed, because PostgreSQL resolves a UNION's column types branch by branch, and an untyped NULL
    # meeting another untyped NULL becomes text, which an id or a date later in the UNION cannot match.
    return Cast(Value(None), field)


def key_columns(**given) -> dict:
    """The ledger key columns every selection yields (``tracker.reminders._SELECT``); the shape's own are given."""
    blank = {
        "_rec": _none(IntegerField()),
        "_due": _none(DateField()),
        "_action": _none(IntegerField()),
        "_measure": _none(IntegerField()),
        "_inspection": _none(IntegerField()),
        "_deadline": Value(""),
        "_date": _none(DateField()),
        "_occ": Value(0, output_field=IntegerField()),
    }
    return {**blank, **given}


# ---------------------------------------------------------------------------------------------
# Plan actions: to the action's owner.
# ---------------------------------------------------------------------------------------------

_OPEN_REC = Q(recommendation__status__in=Recommendation.OPEN_STATUSES)


def action_rules(today: dt.date, lead_days: int) -> dict[str, Q]:
    """stage -> the Q on PlanAction under which that stage is due today (literal values: checked in Python too)."""
    owner_active = Q(owner__is_active=True)
    soon = PlanAction.open_q() & Q(due_date__gte=today, due_date__lte=today + dt.timedelta(days=lead_days))
    return {
        Stage.ACTION_DUE_SOON: soon & _OPEN_REC & owner_active,
        Stage.ACTION_OVERDUE: PlanAction.slipped_q(today) & _OPEN_REC & owner_active,
    }


def _action_occurrence(due: dt.date, today: dt.date, repeat_days: int) -> int:
    return ((today - due).days - 1) // repeat_days


# ---------------------------------------------------------------------------------------------
# Outcome measures: the last complete period's value, to the supplier.
# ---------------------------------------------------------------------------------------------


def previous_period(period: dt.date, frequency: str) -> dt.date:
    """The month or quarter before ``period`` (a period's first day)."""
    return period_start(period - dt.timedelta(days=1), frequency)


def measure_period(frequency: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """(the period whose data is due today, the day it became due: the first day of the next period)."""
    current = period_start(today, frequency)
    return previous_period(current, frequency), current


def measure_rule(frequency: str, today: dt.date) -> Q:
    """The Q on OutcomeMeasure for "its last period's data is due" (besides "not entered", which needs the data)."""
    period, _ = measure_period(frequency, today)
    return Q(frequency=frequency, baseline_period__lt=period, supplier__is_active=True) & _OPEN_REC


# ---------------------------------------------------------------------------------------------
# Inspection deadlines: to the organisation's governance leads.
# ---------------------------------------------------------------------------------------------

_DEADLINE_FIELDS = {Deadline.ACTION_PLAN: "action_plan_due", Deadline.REVISIT: "revisit_due"}


def deadline_stage(date: dt.date, today: dt.date) -> str | None:
    """Which stage a deadline on ``date`` is at today, if any."""
    days = (date - today).days
    if 1 <= days <= DEADLINE_NOTICE_DAYS:
        return Stage.DEADLINE_APPROACHING
    if -DEADLINE_LATE_DAYS <= days <= 0:
        return Stage.DEADLINE_DUE
    return None


def _stage_window(stage: str, today: dt.date) -> tuple[dt.date, dt.date]:
    if stage == Stage.DEADLINE_APPROACHING:
        return today + dt.timedelta(days=1), today + dt.timedelta(days=DEADLINE_NOTICE_DAYS)
    return today - dt.timedelta(days=DEADLINE_LATE_DAYS), today


def deadline_date(inspection: Inspection, kind: str) -> dt.date | None:
    """The inspection's date for one kind of deadline, as ``tracker.deadlines`` computes it."""
    if kind == Deadline.PCC_RESPONSE:
        return inspection.pcc_response_due
    return getattr(inspection, _DEADLINE_FIELDS[kind])


# ---------------------------------------------------------------------------------------------
# Planning and the check at delivery.
# ---------------------------------------------------------------------------------------------


def selections(today: dt.date, policy, leads: Collection[int]) -> dict[str, QuerySet]:
    """One queryset per (kind, stage), each annotated with every ledger key column.

    ``policy`` is ``tracker.reminders.Policy``; ``leads`` the ids of every active governance lead.
    """
    from tracker.reminders import DaysBetween

    found: dict[str, QuerySet] = {}
    for stage, when in action_rules(today, policy.lead_days).items():
        occurrence = Value(0, output_field=IntegerField())
        if stage == Stage.ACTION_OVERDUE:
            days_late = DaysBetween(Value(today, output_field=DateField()), F("due_date"))
            occurrence = (days_late - 1) / Value(policy.overdue_repeat_days)
        found[f"plan action {stage}"] = (
            PlanAction.objects.order_by()
            .filter(when, owner__organisation_id=F("recommendation__organisation_id"))
            .annotate(
                **key_columns(
                    _to=F("owner_id"),
                    _stage=Value(str(stage)),
                    _action=F("pk"),
                    _date=F("due_date"),
                    _occ=occurrence,
                )
            )
        )
    for frequency in MeasureFrequency:
        period, due = measure_period(frequency, today)
        entered = MeasureDataPoint.objects.filter(measure=OuterRef("pk"), period=period)
        found[f"measure data due {frequency}"] = (
            OutcomeMeasure.objects.order_by()
            .filter(measure_rule(frequency, today), supplier__organisation_id=F("recommendation__organisation_id"))
            .filter(~Exists(entered))
            .annotate(
                **key_columns(
                    _to=F("supplier_id"),
                    _stage=Value(str(Stage.MEASURE_DATA_DUE)),
                    _measure=F("pk"),
                    _date=Value(due, output_field=DateField()),
                )
            )
        )
    if not leads:  # nobody to tell of deadlines (and IN () is invalid SQL)
        return found
    for stage in (Stage.DEADLINE_APPROACHING, Stage.DEADLINE_DUE):
        first, last = _stage_window(stage, today)
        # One row per (inspection, active governance lead of its organisation); as for the review
        # escalations, the annotation reuses the filter's join because the filter comes first.
        to_leads = Inspection.objects.order_by().filter(organisation__users__in=list(leads))
        kinds = {
            Deadline.PCC_RESPONSE: to_leads.filter(
                inspectorate=Inspectorate.HMICFRS,
                organisation__kind=OrganisationKind.POLICE_FORCE,
                published__range=(
                    first - dt.timedelta(days=PCC_RESPONSE_DAYS),
                    last - dt.timedelta(days=PCC_RESPONSE_DAYS),
                ),
            ).annotate(_when=AddDays(F("published"), PCC_RESPONSE_DAYS)),
            **{
                kind: to_leads.filter(**{f"{name}__range": (first, last)}).annotate(_when=F(name))
                for kind, name in _DEADLINE_FIELDS.items()
            },
        }
        for kind, qs in kinds.items():
            found[f"deadline {kind} {stage}"] = qs.annotate(
                **key_columns(
                    _to=F("organisation__users__id"),
                    _stage=Value(str(stage)),
                    _inspection=F("pk"),
                    _deadline=Value(str(kind)),
                    _date=F("_when"),
                )
            )
    return found


@dataclass(frozen=True)
class Entered:
    """The data points already entered for the measures of a batch: (measure id, period)."""

    points: frozenset[tuple[int, dt.date]]

    @classmethod
    def for_rows(cls, rows) -> Entered:
        measures = {row.measure_id for row in rows if row.measure_id is not None}
        if not measures:
            return cls(frozenset())
        return cls(frozenset(MeasureDataPoint.objects.filter(measure_id__in=measures).values_list("measure", "period")))


def still_due(row: Reminder, leads: set[tuple[int, int]], today: dt.date, policy, entered: Entered) -> bool:
    """Would the planner, run now on the item as it is now, produce this very row?"""
    person = row.recipient
    if row.plan_action_id is not None:
        action = row.plan_action
        rec = action.recommendation
        when = action_rules(today, policy.lead_days).get(row.stage)
        if when is None or row.due != action.due_date or row.recipient_id != action.owner_id:
            return False
        if person.organisation_id != rec.organisation_id or not matches(action, when):
            return False
        occurrence = (
            _action_occurrence(action.due_date, today, policy.overdue_repeat_days)
            if row.stage == Stage.ACTION_OVERDUE
            else 0
        )
        return row.occurrence == occurrence
    if row.measure_id is not None:
        measure = row.measure
        if row.stage != Stage.MEASURE_DATA_DUE or row.recipient_id != measure.supplier_id:
            return False
        period, due = measure_period(measure.frequency, today)
        return (
            row.due == due
            and person.organisation_id == measure.recommendation.organisation_id
            and matches(measure, measure_rule(measure.frequency, today))
            and (measure.pk, period) not in entered.points
        )
    if row.inspection_id is not None:
        inspection = row.inspection
        date = deadline_date(inspection, row.deadline)
        return (
            date is not None
            and row.due == date
            and deadline_stage(date, today) == row.stage
            and (row.recipient_id, inspection.organisation_id) in leads
        )
    return False


# ---------------------------------------------------------------------------------------------
# What a digest says of each: a fixed sentence, a date and a link; never a description or a title.
# ---------------------------------------------------------------------------------------------

ACTION_TEXT = {
    Stage.ACTION_DUE_SOON: "An action you own on a recommendation's plan is due soon.",
    Stage.ACTION_OVERDUE: "An action you own on a recommendation's plan is overdue.",
}


def describe(row: Reminder) -> tuple[str, str | None, str]:
    """(sentence, recommendation reference or None, path of the item's page) for one row of these shapes."""
    if row.plan_action_id is not None:
        action = row.plan_action
        return (
            ACTION_TEXT[row.stage],
            action.recommendation.finding.reference,
            reverse("tracker:plan-action", args=[action.pk]),
        )
    if row.measure_id is not None:
        measure = row.measure
        period = previous_period(row.due, measure.frequency)
        text = f"Data for {period_label(period, measure.frequency)} is due for an outcome measure you supply."
        return text, measure.recommendation.finding.reference, reverse("tracker:measure-data", args=[measure.pk])
    label = Deadline(row.deadline).label
    if row.stage == Stage.DEADLINE_APPROACHING:
        text = f"An inspection deadline is approaching: the {label[0].lower()}{label[1:]}."
    else:
        text = f"An inspection deadline is due or has passed: the {label[0].lower()}{label[1:]}."
    return text, None, row.inspection.get_absolute_url()
