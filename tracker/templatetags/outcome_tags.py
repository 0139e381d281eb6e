"""Filters for the action plan and outcome measures (issue 16)."""

from __future__ import annotations

from django import template

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
