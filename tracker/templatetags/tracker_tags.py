"""Small helpers that give Django form fields and statuses the GOV.UK Frontend markup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django import forms, template
from django.forms.boundfield import BoundField
from django.template.defaultfilters import date, timesince_filter
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from tracker.models import Evidence, Recommendation

register = template.Library()

_WIDGET_CLASSES = (
    (forms.Textarea, "govuk-textarea"),
    (forms.Select, "govuk-select"),
    (forms.ClearableFileInput, "govuk-file-upload"),
    (forms.FileInput, "govuk-file-upload"),
    (forms.DateInput, "govuk-input govuk-input--width-10"),
    (forms.widgets.Input, "govuk-input"),
)

STATUS_COLOURS = {
    Recommendation.Status.NOT_STARTED: "grey",
    Recommendation.Status.IN_PROGRESS: "blue",
    Recommendation.Status.AWAITING_ASSURANCE: "purple",
    Recommendation.Status.CLOSED: "green",
    Recommendation.Status.SUPERSEDED: "grey",
}
RAG_COLOURS = {"red": "red", "amber": "orange", "green": "green", "": "grey"}
VERDICT_COLOURS = {
    Evidence.Verdict.PENDING: "yellow",
    Evidence.Verdict.ACCEPTED: "green",
    Evidence.Verdict.REJECTED: "red",
}


@register.filter
def widget_type(field: BoundField) -> str:
    widget = field.field.widget
    if isinstance(widget, forms.CheckboxSelectMultiple):  # a subclass of RadioSelect, so first
        return "checkboxes"
    if isinstance(widget, forms.RadioSelect):
        return "radios"
    if isinstance(widget, forms.CheckboxInput):
        return "checkbox"
    return "input"


@register.filter
def govuk_widget(field: BoundField) -> str:
    """The field's widget with the GOV.UK class, its error modifier, and hint/error descriptions."""
    widget = field.field.widget
    css = next((css for kind, css in _WIDGET_CLASSES if isinstance(widget, kind)), "")
    attrs = {}
    if css:
        first = css.split()[0]
        attrs["class"] = f"{css} {first}--error" if field.errors else css
    described = ([f"{field.auto_id}-hint"] if field.help_text else []) + (
        [f"{field.auto_id}-error"] if field.errors else []
    )
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.filter
def head(items, count: int | None):
    """The first ``count`` of ``items``, or all of them when ``count`` is None (the board pack's PDF)."""
    return items if count is None else items[:count]


@register.filter
def first_input_id(field: BoundField) -> str:
    """Where an error summary link should take the user: the field, or its first option."""
    return f"{field.auto_id}_0" if widget_type(field) in ("radios", "checkboxes") else field.auto_id


@register.filter
def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "grey")


@register.filter
def rag_colour(rag: str) -> str:
    return RAG_COLOURS.get(rag or "", "grey")


@register.filter
def verdict_colour(verdict: str) -> str:
    return VERDICT_COLOURS.get(verdict, "grey")


@register.filter
def is_checked(value, choice_value) -> bool:
    """Whether a radio or checkbox option is selected, for single and multiple values alike."""
    if value is None:
        return False
    values = value if isinstance(value, list | tuple) else [value]
    return str(choice_value) in {str(v) for v in values}


@register.simple_tag
def sees_all_recommendations(user) -> bool:
    from tracker.permissions import sees_whole_organisation

    return sees_whole_organisation(user)


# Templates ask the model where a recommendation stands, on the page's own date, rather than
# comparing dates themselves: `{% if rec|review_state:today == "overdue" %}`.


@register.filter
def review_state(rec: Recommendation, today) -> str:
    return rec.review_state(today)


@register.filter
def target_missed(rec: Recommendation, today) -> bool:
    return rec.target_missed(today)


# The list's rows in Python: fifty rows of fifteen lookups and filters each in the template engine were
# about half of the page's Python time. The markup is the one the template wrote, byte for byte.
_ROW = (
    '\n        <tr class="govuk-table__row">\n          {}\n'
    '          <td class="govuk-table__cell" data-label="Recommendation"><a class="govuk-link" href="{}">{}: {}</a>'
    '<br><span class="govuk-body-s">{}</span></td>\n'
    '          <td class="govuk-table__cell" data-label="Owner">{}</td>\n'
    '          <td class="govuk-table__cell" data-label="Status"><strong class="govuk-tag govuk-tag--{}">{}</strong></td>\n'
    '          <td class="govuk-table__cell" data-label="RAG"><strong class="govuk-tag govuk-tag--{}">{}</strong></td>\n'
    '          <td class="govuk-table__cell tracker-nowrap" data-label="Review due">{}{}</td>\n'
    '          <td class="govuk-table__cell tracker-nowrap" data-label="Target date">{}</td>\n'
    "        </tr>\n      "
)
_SELECT = (
    '<td class="govuk-table__cell tracker-select-col">{}</td>',
    '<div class="govuk-checkboxes govuk-checkboxes--small" data-module="govuk-checkboxes">'
    '<div class="govuk-checkboxes__item"><input class="govuk-checkboxes__input" id="select-{}" name="selected" '
    'type="checkbox" value="{}"{}><label class="govuk-label govuk-checkboxes__label" for="select-{}">'
    '<span class="govuk-visually-hidden">Select {}</span></label></div></div>',
)
_OVERDUE = mark_safe('<br><strong class="govuk-tag govuk-tag--red">Overdue</strong>')
_DAY = "j M Y"


def _day(value: dt.date | None) -> str:
    """A date as the date filter writes it with ``_DAY`` ("14 Sep 2026"), written out for a table's many
    dates: the filter's general path (formats, then a format string read letter by letter) cost a fifth of a
    row. A date and time is first turned into local time, as a template does before its filter."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    if not value:
        return date(value, _DAY)
    return f"{value.day} {MONTHS_3[value.month].title()} {value.year:04d}"


_URL_SENTINEL = 987654321


def _recommendation_urls() -> Callable[[int], str]:
    """Each row's link for one table, from one reverse(): the path differs only in the id (reverse() cost a
    sixth of a row)."""
    head, _sentinel, tail = reverse("tracker:recommendation", args=[_URL_SENTINEL]).rpartition(str(_URL_SENTINEL))
    return lambda pk: f"{head}{pk}{tail}"


def _standing(rec: Recommendation) -> tuple:
    """Owner, status, RAG and review date, as the list's rows and home's show them."""
    return (
        rec.owner or "No owner",
        status_colour(rec.status),
        rec.get_status_display(),
        rag_colour(rec.rag),
        rec.get_rag_display(),
        _day(rec.next_review_due),
    )


@register.simple_tag
def recommendation_rows(rows, today, bulk: bool, selectable: set[int], selected: set[int]) -> str:
    """The table rows of the recommendation list; ``bulk``: with a tick box on each row that may be changed."""
    html, url = [], _recommendation_urls()
    for rec in rows:
        select = ""
        if bulk:
            tick = ""
            if rec.pk in selectable:
                checked = mark_safe(" checked") if rec.pk in selected else ""
                tick = format_html(_SELECT[1], rec.pk, rec.pk, checked, rec.pk, rec.finding.reference)
            select = format_html(_SELECT[0], tick)
        html.append(
            format_html(
                _ROW,
                select,
                url(rec.pk),
                rec.finding.reference,
                rec.title,
                rec.finding.inspection,
                *_standing(rec),
                _OVERDUE if rec.review_state(today) == "overdue" else "",
                _day(rec.target_date) or "Not set",
            )
        )
    return mark_safe("".join(html))


# Home's rows in Python too, for the same reason: a lead's home shows up to a hundred of them.
_INBOX_ROW = (
    '\n    <tr class="govuk-table__row">\n'
    '      <td class="govuk-table__cell" data-label="Recommendation"><a class="govuk-link" href="{}">{}: {}</a></td>\n'
    '      <td class="govuk-table__cell" data-label="Owner">{}</td>\n'
    '      <td class="govuk-table__cell" data-label="Status"><strong class="govuk-tag govuk-tag--{}">{}</strong></td>\n'
    '      <td class="govuk-table__cell" data-label="RAG"><strong class="govuk-tag govuk-tag--{}">{}</strong></td>\n'
    '      <td class="govuk-table__cell tracker-nowrap" data-label="Review due">{}{}</td>\n'
    '      <td class="govuk-table__cell tracker-nowrap" data-label="{}">{}</td>\n'
    "    </tr>\n  "
)
_INLINE_OVERDUE = mark_safe(' <strong class="govuk-tag govuk-tag--red">Overdue</strong>')
_MISSED = mark_safe(' <strong class="govuk-tag govuk-tag--red">Missed</strong>')


def _inbox_last_cell(key: str, rec: Recommendation, today) -> str:
    """Awaiting assurance: how long it has waited; any other group: the target date, and a recent move of it."""
    if key == "awaiting":
        return timesince_filter(rec.submitted_at) if rec.submitted_at else "Not recorded"
    cell = format_html("{}{}", _day(rec.target_date) or "Not set", _MISSED if rec.target_missed(today) else "")
    move = getattr(rec, "inbox_move", None) if key == "target_moved" else None
    if move:
        reason = format_html(': <span class="tracker-pre-line">{}</span>', move.reason) if move.reason else ""
        cell = format_html(
            '{}<br><span class="govuk-body-s tracker-moved">Moved {}{}</span>', cell, _day(move.at), reason
        )
    return cell


@register.simple_tag
def inbox_rows(key: str, rows, today) -> str:
    """The table rows of one of home's groups (``key``)."""
    label, url = "Waiting" if key == "awaiting" else "Target date", _recommendation_urls()
    return mark_safe(
        "".join(
            format_html(
                _INBOX_ROW,
                url(rec.pk),
                rec.finding.reference,
                rec.title,
                *_standing(rec),
                _INLINE_OVERDUE if rec.review_state(today) == "overdue" else "",
                label,
                _inbox_last_cell(key, rec, today),
            )
            for rec in rows
        )
    )
