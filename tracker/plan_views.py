"""The action plan and outcome measures on the staff pages (issue 16).

``page_context`` gives the recommendation page its plan, its measures (each with a server-side SVG trend
against the target and the numbers as a table) and the closure gate, in a fixed number of queries
however many actions and data points there are. The views below are one page per write, each asking
``tracker.policy`` (with the plan action or measure whose own owner or supplier may act) and calling one
``tracker.workflow`` function. Another organisation's objects, and items a person may not see, are 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.db.models import Case, Count, IntegerField, Min, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from tracker import outcomes, permissions, policy, workflow
from tracker import plan_forms as forms
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, Recommendation, RecommendationEvent
from tracker.permissions import Action
from tracker.policy import Decision
from tracker.views import _not_now, _recommendation, staff_page

PLAN_LIMIT = 50  # actions listed on the recommendation page; the counts cover them all
CHART_PERIODS = 24  # the latest periods drawn and tabled per measure

Event = RecommendationEvent.Action


# The recommendation page.


@dataclass(frozen=True)
class ChartPoint:
    period: dt.date
    label: str
    value: Decimal
    at_target: bool
    x: float
    y: float
    point: MeasureDataPoint


@dataclass(frozen=True)
class TrendChart:
    """One measure's values by period (a line with dots), its target and baseline (dashed lines)."""

    measure: OutcomeMeasure
    points: list[ChartPoint]
    target_y: float
    baseline_y: float
    ticks: list[dict]
    description: str
    width: int = 640
    height: int = 240
    left: int = 64
    right: int = 16
    top: int = 16
    bottom: int = 40

    @property
    def axis_y(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)

    @property
    def label_every(self) -> int:
        return max(1, len(self.points) // 8)


def trend_chart(measure: OutcomeMeasure, points: list[MeasureDataPoint]) -> TrendChart:
    width, height, left, right, top, bottom = 640, 240, 64, 16, 16, 40
    shown = points[-CHART_PERIODS:]
    values = [p.value for p in shown] + [measure.target_value, measure.baseline_value]
    low, high = min([*values, Decimal(0)]), max(values)
    if high == low:
        high = low + 1
    plot = height - top - bottom
    step = (width - left - right) / max(1, len(shown))

    def y(value: Decimal) -> float:
        return round(top + plot * float((high - value) / (high - low)), 1)

    chart_points = [
        ChartPoint(
            p.period,
            outcomes.period_label(p.period, measure.frequency),
            p.value,
            measure.meets_target(p.value),
            round(left + step * (i + 0.5), 1),
            y(p.value),
            p,
        )
        for i, p in enumerate(shown)
    ]
    ticks = [{"value": outcomes.number(v), "y": y(v)} for v in sorted({low, high, (low + high) / 2})]
    unit = measure.unit
    if shown:
        met = sum(1 for p in chart_points if p.at_target)
        description = (
            f"{len(shown)} periods from {chart_points[0].label} to {chart_points[-1].label}: latest "
            f"{outcomes.with_unit(shown[-1].value, unit)}; at target in {met} of them. Target "
            f"{outcomes.target_text(measure)}; baseline {outcomes.with_unit(measure.baseline_value, unit)}."
        )
    else:
        description = f"No data yet. Target {outcomes.target_text(measure)}."
    return TrendChart(measure, chart_points, y(measure.target_value), y(measure.baseline_value), ticks, description)


@dataclass(frozen=True)
class MeasureRow:
    measure: OutcomeMeasure
    standing: outcomes.Standing
    chart: TrendChart
    may_enter: bool
    count: int


def page_context(user, rec: Recommendation, decided: dict[Action, Decision]) -> dict:
    """The plan, the measures and the gate for the recommendation page: six queries whatever the size."""
    today = timezone.localdate()
    facts = policy.Facts(rec, user)
    actions = PlanAction.objects.filter(recommendation_id=rec.pk)
    summary = actions.aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(status=PlanAction.Status.DONE)),
        slipped=Count("pk", filter=PlanAction.slipped_q(today)),
        next_due=Min("due_date", filter=PlanAction.open_q()),
    )
    done_last = Case(When(status=PlanAction.Status.DONE, then=Value(1)), default=Value(0), output_field=IntegerField())
    rows = list(actions.select_related("owner").order_by(done_last, "due_date", "pk")[:PLAN_LIMIT])
    plan = [
        {
            "action": row,
            "slipped": row.is_slipped(today),
            "may_update": policy.decide(user, rec, Action.UPDATE_PLAN_ACTION, facts, item=row).allowed,
        }
        for row in rows
    ]
    measures = []
    for measure in outcomes.load_measures(rec, periods=CHART_PERIODS):
        points = outcomes.points_of(measure)
        measures.append(
            MeasureRow(
                measure,
                outcomes.standing(measure, points),
                trend_chart(measure, points),
                policy.decide(user, rec, Action.ENTER_MEASURE_DATA, facts, item=measure).allowed,
                measure.point_count,
            )
        )
    # Only an override of this round counts: reopening the recommendation cancels it (policy).
    override = (
        rec.events.filter(action=Event.OUTCOME_GATE_OVERRIDDEN, at__gte=policy._opened_at(rec))
        .select_related("actor")
        .order_by("-at", "-pk")
        .first()
    )
    links = {action: decided[action] for action in OUTCOME_LINKS}
    return {
        "plan": plan,
        "plan_summary": summary,
        "plan_more": max(0, summary["total"] - len(rows)),
        "may_manage_plan": decided[Action.MANAGE_PLAN].allowed,
        "measures": measures,
        "gated": outcomes.is_gated(rec),
        "gated_always": rec.finding.kind == "cause_of_concern",
        "periods_required": outcomes.periods_required(),
        "override": override,
        "outcome_links": [
            (action, label, reverse(url, args=[rec.pk]), links[action])
            for action, (url, label) in OUTCOME_LINKS.items()
            if links[action].allowed or not links[action].by_role
        ],
    }


# The links the page offers for the plan and the gate, shown exactly when the policy allows them; a state
# refusal is shown with its reason instead.
OUTCOME_LINKS = {
    Action.MANAGE_PLAN: ("tracker:plan-add", "Add an action to the plan"),
    Action.MANAGE_MEASURES: ("tracker:measure-add", "Add an outcome measure"),
    Action.SET_OUTCOME_GATED: ("tracker:outcome-gated", "Change whether it closes on outcomes"),
    Action.OVERRIDE_OUTCOME_GATE: ("tracker:outcome-override", "Record an outcome override"),
}


# One page per write.


@dataclass(frozen=True)
class Step:
    action: Action
    form_class: type
    title: str
    button: str
    perform: Callable  # (request, rec, item, form) -> success message
    intro: str = ""
    warning: bool = False


def _back(user, rec: Recommendation) -> str:
    """Where to go afterwards: the recommendation, or home for an action owner who may not see it."""
    return rec.get_absolute_url() if policy.decide(user, rec, Action.VIEW).allowed else reverse("tracker:home")


def _write_page(
    request: HttpRequest, rec: Recommendation, step: Step, *, item=None, deciding=None, about: str = ""
) -> HttpResponse:
    """Policy first (403 by role, the "not now" page by state), then the form and the one workflow call."""
    try:
        policy.require(request.user, step.action, rec, deciding)
    except workflow.WorkflowError as exc:
        return _not_now(request, rec, step.title, str(exc))
    kwargs = {"recommendation": rec}
    if issubclass(step.form_class, forms.ItemForm):
        kwargs["item"] = item
    form = step.form_class(request.POST or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        try:
            message = step.perform(request, rec, item if item is not None else deciding, form.cleaned_data)
        except workflow.StaleRecommendation as exc:
            form.add_error(None, str(exc))
        except workflow.WorkflowError as exc:
            form.add_workflow_error(str(exc))
        else:
            messages.success(request, message)
            return redirect(_back(request.user, rec))
    context = {"recommendation": rec, "form": form, "step": step, "about": about, "back": _back(request.user, rec)}
    return render(request, "tracker/plan_step.html", context)


def _add_action(request, rec, item, data) -> str:
    workflow.add_plan_action(
        rec, by=request.user, description=data["description"], owner=data["owner"], due_date=data["due_date"]
    )
    return "The action has been added to the plan."


def _change_action(request, rec, item, data) -> str:
    workflow.change_plan_action(
        item,
        by=request.user,
        description=data["description"],
        owner=data["owner"],
        due_date=data["due_date"],
        reason=data["reason"],
        expected_version=data["version"],
    )
    return "The action has been changed."


def _update_action(request, rec, item, data) -> str:
    workflow.set_plan_action_status(
        item,
        by=request.user,
        status=data["status"],
        blocked_reason=data["blocked_reason"],
        evidence_link=data["evidence_link"],
        expected_version=data["version"],
    )
    return f"The action is now {item.get_status_display().lower()}."


def _add_measure(request, rec, item, data) -> str:
    fields = ("name", "definition", "unit", "direction", "frequency", "baseline_value", "baseline_period")
    workflow.add_measure(
        rec,
        by=request.user,
        target_value=data["target_value"],
        target_date=data["target_date"],
        supplier=data["supplier"],
        expected_version=data["version"],
        **{name: data[name] for name in fields},
    )
    return "The outcome measure has been added."


def _enter_data(request, rec, measure, data) -> str:
    point = workflow.enter_measure_data(
        measure, by=request.user, period=data["period"], value=data["value"], note=data["note"]
    )
    return f"The value for {outcomes.period_label(point.period, measure.frequency)} has been saved."


def _correct_data(request, rec, point, data) -> str:
    workflow.correct_measure_data(
        point,
        by=request.user,
        value=data["value"],
        note=data["note"],
        reason=data["reason"],
        expected_version=data["version"],
    )
    return "The value has been corrected."


def _set_gated(request, rec, item, data) -> str:
    workflow.set_outcome_gated(
        rec, by=request.user, gated=data["gated"], reason=data["reason"], expected_version=data["version"]
    )
    return "It now closes only on its outcomes." if data["gated"] else "It no longer closes on its outcomes."


def _override(request, rec, item, data) -> str:
    workflow.override_outcome_gate(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
    return "The outcome override has been recorded. The recommendation may now be closed."


ADD_ACTION = Step(Action.MANAGE_PLAN, forms.PlanActionForm, "Add an action to the plan", "Add action", _add_action)
CHANGE_ACTION = Step(Action.MANAGE_PLAN, forms.PlanActionForm, "Change a plan action", "Save changes", _change_action)
UPDATE_ACTION = Step(
    Action.UPDATE_PLAN_ACTION, forms.PlanActionStatusForm, "Update a plan action", "Save status", _update_action
)
ADD_MEASURE = Step(
    Action.MANAGE_MEASURES,
    forms.MeasureForm,
    "Add an outcome measure",
    "Add measure",
    _add_measure,
    intro="How you will know that the work changed outcomes for children: what is counted, where it starts, "
    "the target and who supplies the data each month or quarter.",
)
ENTER_DATA = Step(Action.ENTER_MEASURE_DATA, forms.DataPointForm, "Enter measure data", "Save value", _enter_data)
CORRECT_DATA = Step(
    Action.ENTER_MEASURE_DATA, forms.DataPointForm, "Correct a value", "Save correction", _correct_data, warning=True
)
SET_GATED = Step(
    Action.SET_OUTCOME_GATED, forms.OutcomeGatedForm, "Close on outcomes", "Save", _set_gated, warning=True
)
OVERRIDE = Step(
    Action.OVERRIDE_OUTCOME_GATE,
    forms.OverrideForm,
    "Record an outcome override",
    "Record override",
    _override,
    intro="An override lets this recommendation close although its outcome measures have not met their targets "
    "for the periods required. Someone who did none of the work records it, with the reason.",
    warning=True,
)


def _plan_action(request: HttpRequest, pk: int) -> PlanAction:
    return get_object_or_404(
        permissions.visible_plan_actions(request.user).select_related(
            "owner", "recommendation__finding__inspection", "recommendation__owner"
        ),
        pk=pk,
    )


def _measure(request: HttpRequest, pk: int) -> OutcomeMeasure:
    return get_object_or_404(
        permissions.visible_measures(request.user).select_related(
            "supplier", "recommendation__finding__inspection", "recommendation__owner"
        ),
        pk=pk,
    )


@staff_page
def add_action(request: HttpRequest, pk: int) -> HttpResponse:
    return _write_page(request, _recommendation(request, pk), ADD_ACTION)


@staff_page
def change_action(request: HttpRequest, pk: int) -> HttpResponse:
    item = _plan_action(request, pk)
    return _write_page(request, item.recommendation, CHANGE_ACTION, item=item, about=item.description)


@staff_page
def update_action(request: HttpRequest, pk: int) -> HttpResponse:
    item = _plan_action(request, pk)
    return _write_page(request, item.recommendation, UPDATE_ACTION, item=item, deciding=item, about=item.description)


@staff_page
def add_measure(request: HttpRequest, pk: int) -> HttpResponse:
    return _write_page(request, _recommendation(request, pk), ADD_MEASURE)


@staff_page
def enter_data(request: HttpRequest, pk: int) -> HttpResponse:
    measure = _measure(request, pk)
    return _write_page(request, measure.recommendation, ENTER_DATA, deciding=measure, about=measure.name)


@staff_page
def correct_data(request: HttpRequest, pk: int, point_pk: int) -> HttpResponse:
    measure = _measure(request, pk)
    point = get_object_or_404(permissions.visible_data_points(request.user).filter(measure=measure), pk=point_pk)
    point.measure = measure
    label = outcomes.period_label(point.period, measure.frequency)
    return _write_page(
        request, measure.recommendation, CORRECT_DATA, item=point, deciding=measure, about=f"{measure.name}, {label}"
    )


@staff_page
def set_gated(request: HttpRequest, pk: int) -> HttpResponse:
    return _write_page(request, _recommendation(request, pk), SET_GATED)


@staff_page
def override(request: HttpRequest, pk: int) -> HttpResponse:
    return _write_page(request, _recommendation(request, pk), OVERRIDE)
