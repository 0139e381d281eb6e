"""Filters for the action plan and outcome measures (issue 16)."""

from __future__ import annotations

from django import template
from django.db.models import Q

from tracker import outcomes

register = template.Library()


@register.filter
def measure_number(value) -> str:
    """90, not 90.0000."""
    return outcomes.number(value)


@register.filter
def measure_value(value, measure) -> str:
    """A value with the measure's unit: 90%, 12 days."""
    return outcomes.with_unit(value, measure.unit)


@register.filter
def target_text(measure) -> str:
    return outcomes.target_text(measure)


@register.filter
def period_label(period, measure) -> str:
    return outcomes.period_label(period, measure.frequency)


@register.filter
def plan_status_colour(status: str) -> str:
    return {"not_started": "grey", "in_progress": "blue", "done": "green", "blocked": "red"}.get(status, "grey")


HOME_LIMIT = 20  # the home page lists the soonest few; it must not grow with the data


@register.inclusion_tag("tracker/includes/my_plan_work.html", takes_context=True)
def my_plan_work(context) -> dict:
    """An action owner's open plan actions and a supplier's measures awaiting data, for their home page.

    Two queries, each capped: what is theirs in their organisation, on open recommendations. Most people
    own no plan action and supply no measure: one query on those two indexes says so first, and each list is
    read only for someone who has some.
    """
    import datetime as dt

    from django.db.models import Exists, Max
    from django.utils import timezone

    from tracker import outcomes, permissions
    from tracker.models import OutcomeMeasure, PlanAction, Recommendation, User

    user = context["request"].user
    today = timezone.localdate()
    has_actions, has_measures = (
        User.objects.filter(pk=user.pk)
        .values_list(
            Exists(PlanAction.objects.filter(owner=user)), Exists(OutcomeMeasure.objects.filter(supplier=user))
        )
        .first()
    ) or (False, False)
    org = Q(recommendation__organisation_id=user.organisation_id) & Q(
        recommendation__status__in=Recommendation.OPEN_STATUSES
    )
    actions = (
        list(
            permissions.visible_plan_actions(user)
            .filter(org, PlanAction.open_q(), owner=user)
            .select_related("recommendation__finding")
            .order_by("due_date", "pk")[: HOME_LIMIT + 1]
        )
        if has_actions
        else []
    )
    measures = (
        list(
            permissions.visible_measures(user)
            .filter(org, supplier=user)
            .select_related("recommendation__finding")
            .annotate(latest=Max("data_points__period"))
            .order_by("pk")[: HOME_LIMIT + 1]
        )
        if has_measures
        else []
    )
    due = []
    for measure in measures[:HOME_LIMIT]:
        # Data for a period is due once it has ended: the last complete period should be entered.
        last_complete = outcomes.period_start(
            outcomes.period_start(today, measure.frequency) - dt.timedelta(days=1), measure.frequency
        )
        if measure.latest is None or measure.latest < last_complete:
            due.append((measure, outcomes.period_label(last_complete, measure.frequency)))
    return {
        "actions": [(a, a.is_slipped(today)) for a in actions[:HOME_LIMIT]],
        "more_actions": len(actions) > HOME_LIMIT,
        "measures_due": due,
    }
