"""Shapes of the API's objects and request bodies. Validation of meaning lives in workflow and uploads."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracker import permissions
from tracker.models import (
    Evidence,
    Finding,
    Inspection,
    Judgement,
    Organisation,
    ProgressUpdate,
    Recommendation,
    Reminder,
    Theme,
    User,
)
from tracker.uploads import CheckedUpload, UploadRejected, check_upload

# Ids in paths and bodies are 64-bit; anything larger cannot name a row.
MAX_ID = 2**63 - 1


class StrictSerializer(serializers.Serializer):
    # Refuses fields it does not accept, naming them, rather than silently dropping them. This is
    # what stops mass assignment: sending `status`, `owner` or `organisation` where they are not
    # writable is a 400 that says so, and nothing is changed. (A comment, not a docstring: the
    # schema would repeat a docstring on every serializer that inherits it.)

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = sorted(set(data.keys()) - writable)
            if refused:
                read_only = {name for name, field in self.fields.items() if field.read_only}
                raise serializers.ValidationError(
                    {name: ["This field is read-only." if name in read_only else "Unknown field."] for name in refused}
                )
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    pass


def version_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        write_only=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="The recommendation's `version` as you last read it. If it has changed since, nothing is saved "
        "and the answer is 412.",
    )


class IdField(serializers.PrimaryKeyRelatedField):
    """An id as a whole number (or its digits, from a form); 1.5, true or an id no row can have is refused."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data.strip().lstrip("-").isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.INT)
class VisibleRecommendationField(IdField):
    """A recommendation the requesting user may see; any other id is 'does not exist'."""

    default_error_messages = {"does_not_exist": "There is no recommendation {pk_value} that you can see."}

    def get_queryset(self):
        return permissions.visible_recommendations(self.context["request"].user).with_related()


@extend_schema_field(OpenApiTypes.INT)
class ColleagueField(IdField):
    """A user of the requester's own organisation: other organisations' people are 'does not exist'."""

    default_error_messages = {"does_not_exist": "There is no user {pk_value} in your organisation."}

    def get_queryset(self):
        return User.objects.filter(organisation_id=self.context["request"].user.organisation_id)


# Read-only objects.


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "slug", "name", "kind"]


class UserSummarySerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name"]

    def get_name(self, user: User) -> str:
        return str(user)


class JudgementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Judgement
        fields = ["area", "grade"]


class InspectionSerializer(serializers.ModelSerializer):
    judgements = JudgementSerializer(many=True, read_only=True)

    class Meta:
        model = Inspection
        fields = [
            "id",
            "organisation",
            "slug",
            "inspectorate",
            "programme",
            "title",
            "published",
            "published_text",
            "url",
            "tracked",
            "judgements",
        ]


class ThemeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Theme
        fields = ["slug", "name"]


class FindingSerializer(serializers.ModelSerializer):
    themes = ThemeSerializer(many=True, read_only=True)
    recommendation = serializers.SerializerMethodField(help_text="The recommendation tracking this finding, if any.")

    class Meta:
        model = Finding
        fields = [
            "id",
            "inspection",
            "reference",
            "kind",
            "title",
            "summary",
            "quote",
            "source_title",
            "source_reference",
            "source_location",
            "provenance",
            "themes",
            "recommendation",
        ]

    def get_recommendation(self, finding: Finding) -> int | None:
        try:
            return finding.recommendation.pk
        except Recommendation.DoesNotExist:
            return None


class RecommendationSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    inspection = serializers.IntegerField(source="finding.inspection_id", read_only=True)
    organisation = serializers.IntegerField(source="finding.inspection.organisation_id", read_only=True)
    owner = UserSummarySerializer(read_only=True, allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True, help_text="Open and past its next review date.")
    allowed_actions = serializers.SerializerMethodField(
        help_text="What the requesting user may do to this recommendation (see tracker.permissions)."
    )

    class Meta:
        model = Recommendation
        fields = [
            "id",
            "reference",
            "title",
            "finding",
            "inspection",
            "organisation",
            "owner",
            "status",
            "rag",
            "target_date",
            "review_interval_days",
            "next_review_due",
            "is_overdue",
            "outcome_measure",
            "superseded_by",
            "version",
            "allowed_actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=list(permissions.Action))))
    def get_allowed_actions(self, rec: Recommendation) -> list[str]:
        return sorted(permissions.allowed_actions(self.context["request"].user, rec))


class ReminderSerializer(serializers.ModelSerializer):
    recipient = UserSummarySerializer(read_only=True)

    class Meta:
        model = Reminder
        fields = [
            "id",
            "recommendation",
            "recipient",
            "stage",
            "review_due",
            "occurrence",
            "state",
            "attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "sent_at",
        ]


# Objects created through the workflow.


class ProgressUpdateSerializer(StrictModelSerializer):
    recommendation = VisibleRecommendationField()
    author = UserSummarySerializer(read_only=True)
    version = version_field()

    class Meta:
        model = ProgressUpdate
        fields = ["id", "recommendation", "author", "created_at", "narrative", "rag", "review_completed", "version"]
        read_only_fields = ["id", "author", "created_at"]
        extra_kwargs = {"rag": {"help_text": "A new RAG rating, if it has changed; blank for no change."}}


class EvidenceSerializer(StrictModelSerializer):
    recommendation = VisibleRecommendationField()
    added_by = UserSummarySerializer(read_only=True)
    reviewed_by = UserSummarySerializer(read_only=True, allow_null=True)
    file = serializers.FileField(
        write_only=True, required=False, help_text="For `kind=file`: the document (multipart upload)."
    )
    download_url = serializers.SerializerMethodField(
        help_text="For files: the permission-checked download address. Files have no other URL."
    )
    version = version_field()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "recommendation",
            "kind",
            "category",
            "description",
            "link",
            "note",
            "file",
            "original_filename",
            "content_type",
            "size_bytes",
            "download_url",
            "added_by",
            "added_at",
            "verdict",
            "reviewed_by",
            "reviewed_at",
            "rejection_reason",
            "version",
        ]
        read_only_fields = [
            "id",
            "original_filename",
            "content_type",
            "size_bytes",
            "added_at",
            "verdict",
            "reviewed_at",
            "rejection_reason",
        ]

    def validate_file(self, upload) -> CheckedUpload:
        try:
            return check_upload(upload)
        except UploadRejected as exc:
            raise serializers.ValidationError(str(exc)) from None

    def get_download_url(self, evidence: Evidence) -> str | None:
        if evidence.kind != Evidence.Kind.FILE:
            return None
        try:
            return reverse("tracker:evidence-download", args=[evidence.pk])
        except NoReverseMatch:
            return None


# Request bodies for workflow actions.


class VersionSerializer(StrictSerializer):
    version = version_field()


class ReasonSerializer(VersionSerializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, help_text="Why.")


class EditDetailsSerializer(VersionSerializer):
    title = serializers.CharField(required=False, max_length=200)
    outcome_measure = serializers.CharField(required=False, allow_blank=True)


class TargetDateSerializer(ReasonSerializer):
    target_date = serializers.DateField(allow_null=True, help_text="The new target date, or null for none.")


class AssignOwnerSerializer(ReasonSerializer):
    owner = ColleagueField(allow_null=True, help_text="A user of your organisation, or null for no owner.")


class ReviewIntervalSerializer(ReasonSerializer):
    review_interval_days = serializers.IntegerField(min_value=1, max_value=3650)


class SupersedeSerializer(ReasonSerializer):
    replacement = VisibleRecommendationField(help_text="The recommendation that replaces this one.")


class NoBodySerializer(StrictSerializer):
    pass


class EvidenceRejectionSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, help_text="Why it is not enough.")
