"""Shapes of the API's objects and request bodies. Validation of meaning lives in workflow and uploads."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracker import permissions, policy
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    Evidence,
    Finding,
    Inspection,
    Judgement,
    Organisation,
    ProgressUpdate,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Reminder,
    Source,
    Theme,
    User,
)
from tracker.uploads import CheckedUpload, UploadRejected, check_upload, clean_filename

# Ids in paths and bodies are 64-bit; anything larger cannot name a row.
MAX_ID = 2**63 - 1
# Text limits come from the model fields (ModelSerializers pick them up by themselves).
REASON_MAX = RecommendationEvent._meta.get_field("reason").max_length
OUTCOME_MEASURE_MAX = Recommendation._meta.get_field("outcome_measure").max_length
REJECTION_REASON_MAX = Evidence._meta.get_field("rejection_reason").max_length


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
        fields = ["area", "grade", "inferred_because"]


class InspectionSerializer(serializers.ModelSerializer):
    judgements = JudgementSerializer(many=True, read_only=True)
    pcc_response_due = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="56 days after publication (Police Act 1996 s.55), for an HMICFRS report on a police force.",
    )

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
            "joint_inspectorates",
            "pcc_response_due",
            "action_plan_due",
            "revisit_due",
            "judgements",
        ]


class ThemeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Theme
        fields = ["slug", "name"]


class SourceSerializer(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Source
        fields = ["id", "title", "publisher", "kind", "kind_display", "published", "published_text", "url"]


class QuotationSerializer(serializers.ModelSerializer):
    source = SourceSerializer(read_only=True)
    label = serializers.CharField(
        read_only=True,
        help_text="Whose words these are, from the source's kind: \"The inspectorate's words\" only for the "
        'inspectorate\'s own report or news release; otherwise "As reported by ..." or "Summary".',
    )

    class Meta:
        model = Quotation
        fields = ["position", "label", "text", "location", "source"]


class FindingSerializer(serializers.ModelSerializer):
    themes = ThemeSerializer(many=True, read_only=True)
    quotations = QuotationSerializer(many=True, read_only=True)
    quote = serializers.CharField(read_only=True, help_text="The first quotation's words (see quotations).")
    quote_label = serializers.CharField(read_only=True, help_text="Whose words the first quotation is.")
    source_title = serializers.CharField(read_only=True, help_text="The first quotation's source.")
    source_location = serializers.CharField(read_only=True, help_text="Where in it.")
    provenance = serializers.CharField(read_only=True, help_text="The first quotation's publication and place.")
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
            "quote_label",
            "source_title",
            "source_location",
            "provenance",
            "quotations",
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
    # The row's own copy of its finding's inspection's organisation (Recommendation.organisation).
    organisation = serializers.IntegerField(source="organisation_id", read_only=True)
    owner = UserSummarySerializer(read_only=True, allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True, help_text="Open and past its next review date.")
    allowed_actions = serializers.SerializerMethodField(
        help_text="What the requesting user may do to this recommendation now (tracker.policy: the same answer "
        "as the pages and the admin). A closed recommendation allows only `view`, and `reopen` to a lead."
    )
    blocked_actions = serializers.SerializerMethodField(
        help_text="Actions the user's role allows but the recommendation's state does not, each with the reason "
        "and what to do instead (for example `submit` before any evidence has been added)."
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
            "blocked_actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, rec: Recommendation) -> dict[str, Any]:
        # What the fields above give, written out: a page is 50 rows of 20 fields, and DRF's generic walk
        # (each field's source path, callable checks, the nested owner serializer) cost some 3 ms of a
        # 20 ms list page. The fields stay declared for the schema and for validation; tests/api/test_lists.py
        # checks this against DRF's own representation. Dates and times keep DRF's formatting.
        owner, decisions = rec.owner, self._decisions(rec)
        return {
            "id": rec.pk,
            "reference": rec.reference,
            "title": rec.title,
            "finding": rec.finding_id,
            "inspection": rec.finding.inspection_id,
            "organisation": rec.organisation_id,
            "owner": None if owner is None else {"id": owner.pk, "username": owner.username, "name": str(owner)},
            "status": rec.status,
            "rag": rec.rag,
            "target_date": _or_none(_DATE, rec.target_date),
            "review_interval_days": rec.review_interval_days,
            "next_review_due": _or_none(_DATE, rec.next_review_due),
            "is_overdue": rec.is_overdue(self._today),
            "outcome_measure": rec.outcome_measure,
            "superseded_by": rec.superseded_by_id,
            "version": rec.version,
            "allowed_actions": self._allowed(decisions),
            "blocked_actions": self._blocked(decisions),
            "created_at": self._datetime(rec.created_at),
            "updated_at": self._datetime(rec.updated_at),
        }

    @cached_property
    def _today(self) -> dt.date:
        """Today, asked once for a whole page (the list's rows share one serializer)."""
        return timezone.localdate()

    @cached_property
    def _timezone(self) -> dt.tzinfo:
        return timezone.get_current_timezone()

    def _datetime(self, value: dt.datetime | None) -> str | None:
        """DRF's ISO 8601 of a date and time (in the current time zone; UTC written as Z), with the time zone
        asked once a page: DRF asks it, and its settings, for each of them, 25 µs a time, 100 a page."""
        if value is None or timezone.is_naive(value):
            return _or_none(_DATETIME, value)
        text = value.astimezone(self._timezone).isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text

    def _decisions(self, rec: Recommendation) -> dict:
        return policy.decisions(self.context["request"].user, rec)

    @staticmethod
    def _allowed(decisions: dict) -> list[str]:
        return sorted(action for action, decision in decisions.items() if decision.allowed)

    @staticmethod
    def _blocked(decisions: dict) -> dict[str, str]:
        return {
            str(action): decision.reason
            for action, decision in sorted(decisions.items())
            if not decision.allowed and not decision.by_role
        }

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=list(permissions.Action))))
    def get_allowed_actions(self, rec: Recommendation) -> list[str]:
        return self._allowed(self._decisions(rec))

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_blocked_actions(self, rec: Recommendation) -> dict[str, str]:
        return self._blocked(self._decisions(rec))


# DRF's formatting of the model's date and time fields, without building the serializer's fields per request.
_DATE = serializers.DateField()
_DATETIME = serializers.DateTimeField()


def _or_none(field: serializers.Field, value: Any) -> Any:
    return None if value is None else field.to_representation(value)


class ReminderSerializer(serializers.ModelSerializer):
    recipient = UserSummarySerializer(read_only=True)

    class Meta:
        model = Reminder
        fields = [
            "id",
            "recommendation",
            "plan_action",
            "measure",
            "inspection",
            "deadline",
            "recipient",
            "stage",
            "review_due",
            "due",
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

    def to_internal_value(self, data: Any) -> Any:
        # Django renames "../x.pdf" to "x.pdf" and drops ".." before we see the file; refuse the name the
        # client actually sent, as the staff pages do (tracker.upload_handlers records it).
        for raw in getattr(self.context.get("request"), "raw_upload_names", []):
            try:
                clean_filename(raw)
            except UploadRejected as exc:
                raise serializers.ValidationError({"file": [str(exc)]}) from None
        return super().to_internal_value(data)

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
    reason = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=REASON_MAX, help_text="Why."
    )


class EditDetailsSerializer(VersionSerializer):
    title = serializers.CharField(required=False, max_length=200)
    outcome_measure = serializers.CharField(required=False, allow_blank=True, max_length=OUTCOME_MEASURE_MAX)


class TargetDateSerializer(ReasonSerializer):
    target_date = serializers.DateField(
        help_text="The new target date. To remove the target date, use `remove-target-date` with a reason."
    )


class RemoveTargetDateSerializer(VersionSerializer):
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why the agreed target date is being removed.")


class AssignOwnerSerializer(ReasonSerializer):
    owner = ColleagueField(allow_null=True, help_text="A user of your organisation, or null for no owner.")


class ReviewIntervalSerializer(ReasonSerializer):
    review_interval_days = serializers.IntegerField(min_value=1, max_value=MAX_REVIEW_INTERVAL_DAYS)


class SetRagSerializer(VersionSerializer):
    rag = serializers.ChoiceField(choices=["red", "amber", "green"], help_text="The new RAG rating.")
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why this is the rating now.")


class SupersedeSerializer(ReasonSerializer):
    replacement = VisibleRecommendationField(help_text="The recommendation that replaces this one.")


class NoBodySerializer(StrictSerializer):
    pass


class EvidenceRejectionSerializer(StrictSerializer):
    reason = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=REJECTION_REASON_MAX,
        help_text="Why it is not enough.",
    )


class OutcomeGatedSerializer(ReasonSerializer):
    """Issue 16: whether a recommendation closes only on its outcome measures."""

    gated = serializers.BooleanField(help_text="True: it closes only when its measures are at target.")
