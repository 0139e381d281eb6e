"""Filters for the API's lists other than recommendations (those use ``tracker.filters.RecommendationFilter``)."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from tracker.api.serializers import MAX_ID
from tracker.models import Evidence, Finding, Inspection, ProgressUpdate, Reminder


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class InspectionFilter(django_filters.FilterSet):
    class Meta:
        model = Inspection
        fields = ["inspectorate", "tracked"]


class FindingFilter(django_filters.FilterSet):
    inspection = IdFilter(field_name="inspection_id")
    theme = django_filters.CharFilter(field_name="themes__slug", help_text="A theme's slug.")

    class Meta:
        model = Finding
        fields = ["inspection", "kind", "theme"]


class ProgressUpdateFilter(django_filters.FilterSet):
    recommendation = IdFilter(field_name="recommendation_id")

    class Meta:
        model = ProgressUpdate
        fields = ["recommendation", "review_completed"]


class EvidenceFilter(django_filters.FilterSet):
    recommendation = IdFilter(field_name="recommendation_id")

    class Meta:
        model = Evidence
        fields = ["recommendation", "kind", "category", "verdict"]


class ReminderFilter(django_filters.FilterSet):
    recommendation = IdFilter(field_name="recommendation_id")
    recipient = IdFilter(field_name="recipient_id")

    class Meta:
        model = Reminder
        fields = ["recommendation", "recipient", "stage", "state"]
