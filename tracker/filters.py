"""Filters on the recommendation list: one FilterSet for the staff pages, the API and exports.

Also the strictness every FilterSet of the project shares: a value a filter does not know (``overdue=maybe``,
``status=bogus``) makes the filter invalid, naming the allowed values, instead of being ignored, which
would silently answer with everything.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

from tracker import inbox, permissions, search
from tracker.models import Inspection, Rag, Recommendation, Status, Theme, User


class StrictBooleanField(forms.NullBooleanField):
    """true, false or nothing; Django's NullBooleanField reads any other word as "nothing"."""

    # A plain select: Django's NullBooleanSelect turns unknown words into None before the field sees them.
    widget = forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])
    TRUE, FALSE = {"true", "1"}, {"false", "0"}

    def to_python(self, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if value is None or value == "":
            return None
        lowered = str(value).strip().lower()
        if lowered in self.TRUE:
            return True
        if lowered in self.FALSE:
            return False
        raise ValidationError("Choose true or false (or leave it out).", code="invalid")

    def validate(self, value: bool | None) -> None:
        return None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class StrictFilterSet(django_filters.FilterSet):
    """Booleans accept only true or false; a choice outside the list is refused with the list."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for filter_ in self.filters.values():
            if isinstance(filter_, django_filters.ModelChoiceFilter | django_filters.ModelMultipleChoiceFilter):
                continue
            if isinstance(filter_, django_filters.ChoiceFilter | django_filters.MultipleChoiceFilter):
                # On this instance's own field (filters are deep-copied per FilterSet, their fields with them).
                field = filter_.field
                allowed = ", ".join(str(value) for value, _label in field.choices if value)
                field.error_messages = {**field.error_messages, "invalid_choice": f"Choose from: {allowed}."}


def _inspections(request) -> QuerySet[Inspection]:
    return permissions.visible_inspections(request.user) if request else Inspection.objects.none()


# Past this many people matching an owner's name, the filter asks for them in a subquery, not by their ids.
NAMES_LISTED = 500


def _owners(request) -> QuerySet[User]:
    if request is None or request.user.organisation_id is None:
        return User.objects.none()
    return User.objects.filter(organisation_id=request.user.organisation_id)


def _themes(request) -> QuerySet[Theme]:
    return Theme.objects.all()


class RecommendationFilter(StrictFilterSet):
    inspection = django_filters.ModelChoiceFilter(
        field_name="finding__inspection", queryset=_inspections, label="Inspection"
    )
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, label="Status")
    owner = django_filters.ModelChoiceFilter(queryset=_owners, label="Owner", null_label="No owner")
    owner_name = django_filters.CharFilter(method="filter_owner_name", label="Owner's name", max_length=150)
    theme = django_filters.ModelChoiceFilter(
        field_name="finding__themes", queryset=_themes, label="Theme", to_field_name="slug"
    )
    rag = django_filters.MultipleChoiceFilter(choices=[c for c in Rag.choices if c[0]], label="RAG")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Review overdue")
    due_before = django_filters.DateFilter(
        field_name="next_review_due", lookup_expr="lte", label="Review due on or before"
    )
    due_after = django_filters.DateFilter(
        field_name="next_review_due", lookup_expr="gte", label="Review due on or after"
    )
    q = django_filters.CharFilter(method="filter_search", label="Search")
    # Home's groups of work (tracker.inbox), each in full: "see all" on home links here.
    group = django_filters.ChoiceFilter(choices=inbox.GROUP_CHOICES, method="filter_group", label="Work group")

    class Meta:
        model = Recommendation
        fields = [
            "inspection",
            "status",
            "owner",
            "owner_name",
            "theme",
            "rag",
            "overdue",
            "due_before",
            "due_after",
            "q",
            "group",
        ]

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        # The condition itself, not "pk in (the overdue ones)": the status and date indexes serve it, and its
        # columns are never null, so excluding it is exactly "not overdue".
        overdue = Recommendation.overdue_q(timezone.localdate())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_owner_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Owned by someone of the organisation whose name has every word, or whose username or email it is."""
        words = value.split()
        if not words:
            return queryset
        people = _owners(self.request)
        for word in words:
            people = people.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(username__iexact=word)
                | Q(email__iexact=word)
            )
        # The few people first, then their items from the owner index. Asked in one query, PostgreSQL guessed
        # that a name matches a tenth of the owners and walked every recommendation in list order testing each
        # (128 ms at 100,000 for 7 people); very many matches are still asked as a subquery.
        matching = list(people.values_list("pk", flat=True)[: NAMES_LISTED + 1])
        return queryset.filter(owner__in=matching if len(matching) <= NAMES_LISTED else people.values("pk"))

    def filter_group(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value or self.request is None:
            return queryset
        return inbox.filter_group(queryset, self.request.user, value)

    def filter_queryset(self, queryset: QuerySet, skip: Collection[str] = ()) -> QuerySet:
        """django-filter's loop over the cleaned filters, able to leave some out: one loop for ``qs`` and
        ``unsearched``, so that the two can never filter differently."""
        for name, value in self.form.cleaned_data.items():
            if name not in skip:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def unsearched(self) -> QuerySet:
        """What every filter but the search words selects (the form must be valid)."""
        return self.filter_queryset(self.queryset.all(), skip={"q"})

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """The reference exactly, or the words anywhere in the title, summary or outcome measure (any case),
        from the database's search index (``tracker.search``)."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(search.matches(value))
