"""The action plan and outcome measures in the API (issue 16): the same rules as the pages.

What a person may list is ``tracker.permissions.visible_plan_actions`` / ``visible_measures`` /
``visible_data_points`` (anything else is 404); every write is one ``tracker.workflow`` call, whose
refusals become 400, 403, 409 or 412 like the rest of the API. Writes to one plan action or data point
send that item's ``version``.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tracker import permissions, workflow
from tracker.api.serializers import (
    MAX_ID,
    IdField,
    StrictModelSerializer,
    StrictSerializer,
    UserSummarySerializer,
    VisibleRecommendationField,
    version_field,
)
from tracker.api.views import ReadOnlyViewSet
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, RecommendationEvent

REASON_MAX = RecommendationEvent._meta.get_field("reason").max_length


def item_version() -> serializers.IntegerField:
    return serializers.IntegerField(
        write_only=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="This item's `version` as you last read it. If it has changed since, nothing is saved and the "
        "answer is 412.",
    )


@extend_schema_field(OpenApiTypes.INT)
class EligibleOwnerField(IdField):
    """An active owner or governance lead of the requester's organisation."""

    default_error_messages = {
        "does_not_exist": "There is no active owner or governance lead {pk_value} in your organisation."
    }

    def get_queryset(self):
        return permissions.eligible_owners(self.context["request"].user.organisation_id)


class PlanActionSerializer(StrictModelSerializer):
    recommendation = VisibleRecommendationField()
    owner = EligibleOwnerField()
    owner_detail = UserSummarySerializer(source="owner", read_only=True)
    version = serializers.IntegerField(read_only=True)
    # Blank until someone links the evidence, so not a "uri" in the schema.
    evidence_link = serializers.CharField(read_only=True, help_text="Optional: where to see that it is done.")

    class Meta:
        model = PlanAction
        fields = [
            "id",
            "recommendation",
            "description",
            "owner",
            "owner_detail",
            "due_date",
            "status",
            "blocked_reason",
            "evidence_link",
            "completed_at",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "blocked_reason", "evidence_link", "completed_at", "created_at"]
        read_only_fields += ["updated_at"]


class PlanActionStatusSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=PlanAction.Status.choices)
    blocked_reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    evidence_link = serializers.URLField(required=False, default="", allow_blank=True, max_length=500)
    version = item_version()


class PlanActionChangeSerializer(StrictSerializer):
    description = serializers.CharField(max_length=2000)
    owner = EligibleOwnerField()
    due_date = serializers.DateField()
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=REASON_MAX)
    version = item_version()


class DataPointSerializer(serializers.ModelSerializer):
    entered_by = UserSummarySerializer(read_only=True)

    class Meta:
        model = MeasureDataPoint
        fields = [
            "id",
            "measure",
            "period",
            "value",
            "note",
            "entered_by",
            "entered_at",
            "correction_reason",
            "version",
        ]
        read_only_fields = fields


class MeasureSerializer(StrictModelSerializer):
    recommendation = VisibleRecommendationField()
    supplier = EligibleOwnerField()
    supplier_detail = UserSummarySerializer(source="supplier", read_only=True)
    version = version_field()  # the recommendation's, as for its other writes

    class Meta:
        model = OutcomeMeasure
        fields = [
            "id",
            "recommendation",
            "name",
            "definition",
            "unit",
            "direction",
            "baseline_value",
            "baseline_period",
            "target_value",
            "target_date",
            "frequency",
            "supplier",
            "supplier_detail",
            "created_at",
            "version",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"unit": {"required": False, "allow_blank": True}}


class DataEntrySerializer(StrictSerializer):
    period = serializers.DateField(help_text="Any day of the month or quarter.")
    value = serializers.DecimalField(max_digits=14, decimal_places=4)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class DataCorrectionSerializer(StrictSerializer):
    value = serializers.DecimalField(max_digits=14, decimal_places=4)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why the value is corrected (required).")
    version = item_version()


class PlanActionViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Plan actions you may see: all of your organisation's (reviewers, leads, viewers), your own
    recommendations', and the actions you own."""

    serializer_class = PlanActionSerializer
    ordering_fields = ["due_date", "id"]

    def get_queryset(self) -> QuerySet[PlanAction]:
        return (
            permissions.visible_plan_actions(self.request.user)
            .select_related("owner", "recommendation__finding__inspection", "recommendation__owner")
            .order_by("due_date", "pk")
        )

    @extend_schema(summary="Add an action to a recommendation's plan (its owner or a governance lead)")
    def create(self, request: Request) -> Response:
        data = self.body(PlanActionSerializer)
        item = workflow.add_plan_action(
            data["recommendation"],
            by=request.user,
            description=data["description"],
            owner=data["owner"],
            due_date=data["due_date"],
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Move an action on: in progress, done, or blocked with a reason (its owner, the "
        "recommendation's owner or a governance lead)",
        request=PlanActionStatusSerializer,
        responses=PlanActionSerializer,
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str) -> Response:
        item, data = self.get_object(), self.body(PlanActionStatusSerializer)
        workflow.set_plan_action_status(
            item,
            by=request.user,
            status=data["status"],
            blocked_reason=data["blocked_reason"],
            evidence_link=data["evidence_link"],
            expected_version=data["version"],
        )
        return Response(self.get_serializer(item).data)

    @extend_schema(
        summary="Change an action's wording, owner or due date (moving the date needs a reason)",
        request=PlanActionChangeSerializer,
        responses=PlanActionSerializer,
    )
    @action(detail=True, methods=["post"], url_path="change")
    def change(self, request: Request, pk: str) -> Response:
        item, data = self.get_object(), self.body(PlanActionChangeSerializer)
        workflow.change_plan_action(
            item,
            by=request.user,
            description=data["description"],
            owner=data["owner"],
            due_date=data["due_date"],
            reason=data["reason"],
            expected_version=data["version"],
        )
        return Response(self.get_serializer(item).data)


class MeasureViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Outcome measures you may see: your organisation's, your own recommendations', and those you supply."""

    serializer_class = MeasureSerializer
    ordering_fields = ["name", "id"]

    def get_queryset(self) -> QuerySet[OutcomeMeasure]:
        return (
            permissions.visible_measures(self.request.user)
            .select_related("supplier", "recommendation__finding__inspection", "recommendation__owner")
            .order_by("pk")
        )

    @extend_schema(summary="Add an outcome measure (the recommendation's owner or a governance lead)")
    def create(self, request: Request) -> Response:
        data = self.body(MeasureSerializer)
        rec, version = data.pop("recommendation"), data.pop("version")
        data.setdefault("unit", "")
        measure = workflow.add_measure(rec, by=request.user, expected_version=version, **data)
        return Response(self.get_serializer(measure).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Enter a period's value (the measure's supplier, the recommendation's owner or a governance lead)",
        request=DataEntrySerializer,
        responses={201: DataPointSerializer},
    )
    @action(detail=True, methods=["post"], url_path="data")
    def data(self, request: Request, pk: str) -> Response:
        measure, data = self.get_object(), self.body(DataEntrySerializer)
        point = workflow.enter_measure_data(measure, by=request.user, **data)
        return Response(DataPointSerializer(point).data, status=status.HTTP_201_CREATED)


class DataPointViewSet(ReadOnlyViewSet):
    """Measure data you may see. Corrections keep the old value in the history and need a reason."""

    serializer_class = DataPointSerializer
    ordering_fields = ["period", "id"]

    def get_queryset(self) -> QuerySet[MeasureDataPoint]:
        return (
            permissions.visible_data_points(self.request.user)
            .select_related("entered_by", "measure__recommendation__finding__inspection")
            .order_by("measure", "period", "pk")
        )

    @extend_schema(
        summary="Correct a value, with a reason", request=DataCorrectionSerializer, responses=DataPointSerializer
    )
    @action(detail=True, methods=["post"], url_path="correct")
    def correct(self, request: Request, pk: str) -> Response:
        point, data = self.get_object(), self.body(DataCorrectionSerializer)
        workflow.correct_measure_data(point, by=request.user, expected_version=data.pop("version"), **data)
        return Response(self.get_serializer(point).data)
