"""Filters for the API's lists other than recommendations (those use ``tracker.filters.RecommendationFilter``)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from tracker.api.serializers import MAX_ID
from tracker.filters import StrictFilterSet
from tracker.models import Evidence, Finding, Inspection, ProgressUpdate, Reminder


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class NamedFilterBackend(DjangoFilterBackend):
    """Builds the filter form only when the request names one of its filters (each a parameter of its own name).

    A form whose every field is empty filters nothing, and building the recommendations' (its choices, its
    querysets of inspections, owners and themes) was a tenth of a recommendation's detail and some of every
    plain list page.
    """

    def filter_queryset(self, request, queryset, view) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not request.query_params.keys() & filterset_class.base_filters.keys():
            return queryset
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """An ordering the list does not offer is a 400 naming the ones it does, not silently the default order."""

    def get_ordering(self, request, queryset, view) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.get_default_ordering(view)
        terms = [term.strip() for term in raw.split(",")]
        valid = self.remove_invalid_fields(queryset, terms, view, request)
        if len(valid) != len(terms):
            allowed = ", ".join(sorted(name for name, _ in self.get_valid_fields(queryset, view, {"request": request})))
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Choose from: {allowed}; prefix one with - to reverse it, separate several by commas."
                    ]
                }
            )
        return valid


class InspectionFilter(StrictFilterSet):
    class Meta:
        model = Inspection
        fields = ["inspectorate", "tracked"]


class FindingFilter(StrictFilterSet):
    inspection = IdFilter(field_name="inspection_id")
    theme = django_filters.CharFilter(field_name="themes__slug", help_text="A theme's slug.")

    class Meta:
        model = Finding
        fields = ["inspection", "kind", "theme"]


class ProgressUpdateFilter(StrictFilterSet):
    recommendation = IdFilter(field_name="recommendation_id")

    class Meta:
        model = ProgressUpdate
        fields = ["recommendation", "review_completed"]


class EvidenceFilter(StrictFilterSet):
    recommendation = IdFilter(field_name="recommendation_id")

    class Meta:
        model = Evidence
        fields = ["recommendation", "kind", "category", "verdict"]


class ReminderFilter(StrictFilterSet):
    recommendation = IdFilter(field_name="recommendation_id")
    recipient = IdFilter(field_name="recipient_id")

    class Meta:
        model = Reminder
        fields = ["recommendation", "recipient", "stage", "state"]
