"""Filters on the recommendation list: one FilterSet for the staff pages, the API and exports."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from tracker import permissions
from tracker.models import Inspection, Rag, Recommendation, Status, Theme, User


def _inspections(request) -> QuerySet[Inspection]:
    return permissions.visible_inspections(request.user) if request else Inspection.objects.none()


def _owners(request) -> QuerySet[User]:
    if request is None or request.user.organisation_id is None:
        return User.objects.none()
    return User.objects.filter(organisation_id=request.user.organisation_id)


def _themes(request) -> QuerySet[Theme]:
    return Theme.objects.all()


class RecommendationFilter(django_filters.FilterSet):
    inspection = django_filters.ModelChoiceFilter(
        field_name="finding__inspection", queryset=_inspections, label="Inspection"
    )
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, label="Status")
    owner = django_filters.ModelChoiceFilter(queryset=_owners, label="Owner", null_label="No owner")
    theme = django_filters.ModelChoiceFilter(
        field_name="finding__themes", queryset=_themes, label="Theme", to_field_name="slug"
    )
    rag = django_filters.MultipleChoiceFilter(choices=[c for c in Rag.choices if c[0]], label="RAG")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Review overdue")
    due_before = django_filters.DateFilter(
        field_name="next_review_due", lookup_expr="lte", label="Review due on or before"
    )
    due_after = django_filters.DateFilter(
        field_name="next_review_due", lookup_expr="gte", label="Review due on or after"
    )
    q = django_filters.CharFilter(method="filter_search", label="Search")

    class Meta:
        model = Recommendation
        fields = ["inspection", "status", "owner", "theme", "rag", "overdue", "due_before", "due_after", "q"]

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        overdue = queryset.overdue(timezone.localdate()).values("pk")
        return queryset.filter(pk__in=overdue) if value else queryset.exclude(pk__in=overdue)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(finding__reference__iexact=value)
            | Q(title__icontains=value)
            | Q(finding__summary__icontains=value)
            | Q(outcome_measure__icontains=value)
        )
