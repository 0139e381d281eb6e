"""Thin API views: parse the request, call one permission or workflow function, return the result.

What a user may list comes from ``tracker.permissions.visible_*``: anything else is 404. What a user
may do is decided by ``tracker.workflow`` (which asks ``tracker.permissions``); its refusals become
403, 409 or 412 in ``tracker.api.exceptions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import JsonResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import SearchFilter
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from tracker import permissions, policy, workflow
from tracker.api import filters, serializers
from tracker.api.pagination import CursorPagination
from tracker.api.parsers import BoundedJSONParser
from tracker.api.schema import TrackerAutoSchema
from tracker.filters import RecommendationFilter
from tracker.models import KEPT_FIELDS, Evidence, Organisation, ProgressUpdate, Recommendation, User
from tracker.permissions import Action
from tracker.sources import quotations_prefetch


class IsGovernanceLead(BasePermission):
    message = "Only a governance lead can see reminders."

    def has_permission(self, request: Request, view: Any) -> bool:
        return permissions.is_governance_lead(request.user)


class TrackerViewSet(viewsets.GenericViewSet):
    schema = TrackerAutoSchema()
    parser_classes = [BoundedJSONParser]
    # Any id reaches get_object, so a malformed one is a JSON 404 like any other.
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Any:
        # An id that cannot name a row is simply not found (and must not reach the database).
        raw = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if not raw.isascii() or not raw.isdigit() or int(raw) > serializers.MAX_ID:
            raise NotFound()
        return super().get_object()

    def body(self, serializer_class: type[Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class ReadOnlyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TrackerViewSet):
    pass


class OrganisationViewSet(ReadOnlyViewSet):
    """Your own organisation. Nobody sees another organisation."""

    serializer_class = serializers.OrganisationSerializer
    ordering_fields = ["name"]

    def get_queryset(self) -> QuerySet[Organisation]:
        return permissions.visible_organisations(self.request.user)


class InspectionViewSet(ReadOnlyViewSet):
    """Inspections of your organisation, with their graded judgements. Loaded from seed files, so read-only."""

    serializer_class = serializers.InspectionSerializer
    filterset_class = filters.InspectionFilter
    filter_backends = [DjangoFilterBackend, SearchFilter, filters.StrictOrderingFilter]
    search_fields = ["title", "programme"]
    ordering_fields = ["published", "title", "id"]

    def get_queryset(self) -> QuerySet:
        return (
            permissions.visible_inspections(self.request.user)
            .select_related("organisation")
            .prefetch_related("judgements")
        )


class FindingViewSet(ReadOnlyViewSet):
    """Findings of your organisation's inspections, with quote, provenance and themes. Read-only."""

    serializer_class = serializers.FindingSerializer
    filterset_class = filters.FindingFilter
    filter_backends = [DjangoFilterBackend, SearchFilter, filters.StrictOrderingFilter]
    search_fields = ["reference", "title", "summary"]
    ordering_fields = ["reference", "title", "id"]

    def get_queryset(self) -> QuerySet:
        return (
            permissions.visible_findings(self.request.user)
            .select_related("recommendation")
            .prefetch_related("themes", quotations_prefetch())
            .order_by("inspection", "reference", "pk")
        )


def _recommendation_action(
    name: str, body: type[Serializer], summary: str, description: str = ""
) -> Callable[[Callable], Callable]:
    """A POST on one recommendation: a workflow action with a version, answering the updated recommendation."""

    def decorate(method: Callable) -> Callable:
        method = action(detail=True, methods=["post"], url_path=name)(method)
        return extend_schema(
            summary=summary,
            description=description,
            request=body,
            responses=serializers.RecommendationSerializer,
        )(method)

    return decorate


@extend_schema_view(
    partial_update=extend_schema(
        summary="Edit the title and outcome measure (governance lead)",
        request=serializers.EditDetailsSerializer,
        responses=serializers.RecommendationSerializer,
    )
)
class RecommendationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TrackerViewSet):
    """Recommendations you may see: an owner sees their own; reviewers, leads and viewers their organisation's.

    Every write is a workflow action and sends the `version` it read; the answer is the recommendation
    as it now is. Recommendations are created by seeding, never deleted.
    """

    serializer_class = serializers.RecommendationSerializer
    filterset_class = RecommendationFilter
    # None of its filters is a range (two parameters of other names), so NamedFilterBackend's test holds.
    filter_backends = [filters.NamedFilterBackend, filters.StrictOrderingFilter]
    # Pages by cursor, each order with the id as its tiebreak (tracker.keyset): no count, no OFFSET.
    pagination_class = CursorPagination
    ordering_fields = ["next_review_due", "target_date", "status", "rag", "title", "updated_at", "id"]
    ordering = ["next_review_due", "pk"]

    # Of the finding and the owner, only what a recommendation's JSON and the policy read (the owner's
    # name is str(owner)): a person's row also holds three dates, which PostgreSQL formats and psycopg
    # parses, 150 a page, for nothing.
    RELATED_READ = (
        "finding__reference",
        "finding__inspection",
        "finding__kind",
        "owner__username",
        "owner__first_name",
        "owner__last_name",
    )

    # The columns the database keeps (tracker.kept): home's dates are not in a recommendation's JSON, and the
    # policy reads the facts as its own annotations (policy.with_facts).
    NOT_READ = KEPT_FIELDS

    def get_queryset(self) -> QuerySet[Recommendation]:
        # The finding and the owner: not the inspection and organisation that with_related() also joins,
        # which a recommendation's JSON never reads (it has organisation_id).
        visible = (
            permissions.visible_recommendations(self.request.user)
            .select_related("finding", "owner")
            .only(
                *(field.name for field in Recommendation._meta.concrete_fields if field.name not in self.NOT_READ),
                *self.RELATED_READ,
            )
        )
        return policy.with_facts(visible, self.request.user)

    def paginate_queryset(self, queryset: QuerySet[Recommendation]) -> list[Recommendation] | None:
        page = super().paginate_queryset(queryset)
        policy.read_measures_together(page or [])
        return page

    # Who may ever do each write is checked before its body is read, so a role refusal is a 403 even
    # when the body would also be refused. Whether it may happen now is the workflow's (policy's) answer.
    ROLE_NEEDED = {
        "partial_update": Action.EDIT,
        "submit": Action.SUBMIT,
        "accept": Action.CLOSE,
        "reject": Action.RETURN,
        "reopen": Action.REOPEN,
        "supersede": Action.SUPERSEDE,
        "change_target_date": Action.CHANGE_TARGET_DATE,
        "remove_target_date": Action.CHANGE_TARGET_DATE,
        "assign_owner": Action.REASSIGN,
        "change_review_interval": Action.CHANGE_REVIEW_INTERVAL,
        "set_rag": Action.SET_RAG,
        "outcome_gated": Action.SET_OUTCOME_GATED,  # issue 16
        "outcome_override": Action.OVERRIDE_OUTCOME_GATE,
    }

    def get_object(self) -> Recommendation:
        rec = super().get_object()
        if self.action in self.ROLE_NEEDED:
            policy.require_role(self.request.user, self.ROLE_NEEDED[self.action], rec)
        return rec

    def respond(self, recommendation: Recommendation) -> Response:
        return Response(self.get_serializer(recommendation).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        rec = self.get_object()
        data = self.body(serializers.EditDetailsSerializer)
        return self.respond(
            workflow.edit_details(
                rec,
                by=request.user,
                title=data.get("title", rec.title),
                outcome_measure=data.get("outcome_measure", rec.outcome_measure),
                expected_version=data["version"],
            )
        )

    @_recommendation_action(
        "submit",
        serializers.VersionSerializer,
        "Submit for assurance (owner or governance lead)",
        "Needs evidence; a cause of concern needs outcome evidence.",
    )
    def submit(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.VersionSerializer)
        return self.respond(workflow.submit_for_assurance(rec, by=request.user, expected_version=data["version"]))

    @_recommendation_action(
        "accept",
        serializers.ReasonSerializer,
        "Accept at assurance and close (reviewer or governance lead)",
        "Four eyes: refused to anyone who owned, submitted or added evidence to it since it was last opened.",
    )
    def accept(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.ReasonSerializer)
        return self.respond(
            workflow.close(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        )

    @_recommendation_action(
        "reject", serializers.ReasonSerializer, "Reject at assurance, back to in progress (needs a reason)"
    )
    def reject(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.ReasonSerializer)
        return self.respond(
            workflow.reject(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        )

    @_recommendation_action(
        "reopen", serializers.ReasonSerializer, "Reopen a closed recommendation (governance lead; needs a reason)"
    )
    def reopen(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.ReasonSerializer)
        return self.respond(
            workflow.reopen(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        )

    @_recommendation_action(
        "supersede", serializers.SupersedeSerializer, "Supersede by another recommendation (governance lead)"
    )
    def supersede(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.SupersedeSerializer)
        return self.respond(
            workflow.supersede(
                rec,
                by=request.user,
                replacement=data["replacement"],
                reason=data["reason"],
                expected_version=data["version"],
            )
        )

    @_recommendation_action(
        "change-target-date",
        serializers.TargetDateSerializer,
        "Set or move the target date (governance lead; moving one needs a reason)",
    )
    def change_target_date(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.TargetDateSerializer)
        return self.respond(
            workflow.change_target_date(
                rec,
                by=request.user,
                target_date=data["target_date"],
                reason=data["reason"],
                expected_version=data["version"],
            )
        )

    @_recommendation_action(
        "remove-target-date",
        serializers.RemoveTargetDateSerializer,
        "Remove the target date (governance lead; needs a reason)",
    )
    def remove_target_date(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.RemoveTargetDateSerializer)
        return self.respond(
            workflow.remove_target_date(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        )

    @_recommendation_action(
        "assign-owner",
        serializers.AssignOwnerSerializer,
        "Assign or remove the owner (governance lead)",
        "The owner must be an active owner or governance lead of your organisation.",
    )
    def assign_owner(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.AssignOwnerSerializer)
        owner: User | None = data["owner"]
        return self.respond(
            workflow.assign_owner(
                rec, by=request.user, owner=owner, reason=data["reason"], expected_version=data["version"]
            )
        )

    @_recommendation_action(
        "change-review-interval",
        serializers.ReviewIntervalSerializer,
        "Change the review interval in days (governance lead)",
    )
    def change_review_interval(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.ReviewIntervalSerializer)
        return self.respond(
            workflow.change_review_interval(
                rec,
                by=request.user,
                days=data["review_interval_days"],
                reason=data["reason"],
                expected_version=data["version"],
            )
        )

    @_recommendation_action(
        "set-rag",
        serializers.SetRagSerializer,
        "Set the RAG rating, with a reason (owner or governance lead)",
        "Red, amber or green, recorded on the timeline with the reason. Never changes the status; no progress "
        "update is needed.",
    )
    def set_rag(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.SetRagSerializer)
        return self.respond(
            workflow.set_rag(
                rec, by=request.user, rag=data["rag"], reason=data["reason"], expected_version=data["version"]
            )
        )

    # Issue 16: closure follows outcomes.

    @_recommendation_action(
        "outcome-gated",
        serializers.OutcomeGatedSerializer,
        "Decide whether it closes only on its outcome measures (governance lead)",
        "A cause of concern always does. Taking gating away needs a reason.",
    )
    def outcome_gated(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.OutcomeGatedSerializer)
        return self.respond(
            workflow.set_outcome_gated(
                rec, by=request.user, gated=data["gated"], reason=data["reason"], expected_version=data["version"]
            )
        )

    @_recommendation_action(
        "outcome-override",
        serializers.ReasonSerializer,
        "Let it close without its measures at target, with a reason (reviewer or governance lead)",
        "Only while it awaits assurance; four eyes: refused to anyone who did the work. The reason is required.",
    )
    def outcome_override(self, request: Request, pk: str) -> Response:
        rec, data = self.get_object(), self.body(serializers.ReasonSerializer)
        return self.respond(
            workflow.override_outcome_gate(
                rec, by=request.user, reason=data["reason"], expected_version=data["version"]
            )
        )


class ProgressUpdateViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Progress updates on recommendations you may see. Posting one is the owner's (or a lead's) dated entry."""

    serializer_class = serializers.ProgressUpdateSerializer
    filterset_class = filters.ProgressUpdateFilter
    ordering_fields = ["created_at", "id"]

    def get_queryset(self) -> QuerySet[ProgressUpdate]:
        visible = permissions.visible_recommendations(self.request.user)
        return ProgressUpdate.objects.filter(recommendation__in=visible).select_related("author")

    def create(self, request: Request) -> Response:
        data = self.body(self.serializer_class)
        update = workflow.post_update(
            data["recommendation"],
            by=request.user,
            narrative=data["narrative"],
            rag=data.get("rag"),
            review_completed=data.get("review_completed", False),
            expected_version=data["version"],
        )
        return Response(self.get_serializer(update).data, status=status.HTTP_201_CREATED)


class EvidenceViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Evidence metadata. Files are never served here: follow `download_url`, which checks permission."""

    serializer_class = serializers.EvidenceSerializer
    filterset_class = filters.EvidenceFilter
    ordering_fields = ["added_at", "id"]
    parser_classes = [BoundedJSONParser, MultiPartParser]

    def get_queryset(self) -> QuerySet[Evidence]:
        return permissions.visible_evidence(self.request.user).select_related("added_by", "reviewed_by")

    @extend_schema(
        summary="Add evidence (owner or governance lead)",
        description="A link or a note as JSON; a file as multipart, checked by type and content.",
    )
    def create(self, request: Request) -> Response:
        data = self.body(self.serializer_class)
        upload = data.get("file")
        evidence = workflow.add_evidence(
            data["recommendation"],
            by=request.user,
            kind=data["kind"],
            category=data["category"],
            description=data["description"],
            upload=upload,
            link=data.get("link", ""),
            note=data.get("note", ""),
            expected_version=data["version"],
        )
        return Response(self.get_serializer(evidence).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Accept evidence (reviewer or governance lead, not its author or owner)", request=None)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        evidence = self.get_object()
        self.body(serializers.NoBodySerializer)  # a stray `verdict` or `reviewed_by` is refused, not ignored
        evidence = workflow.review_evidence(evidence, by=request.user, accept=True)
        return Response(self.get_serializer(evidence).data)

    @extend_schema(
        summary="Reject evidence with a reason (reviewer or governance lead, not its author or owner)",
        request=serializers.EvidenceRejectionSerializer,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        evidence, data = self.get_object(), self.body(serializers.EvidenceRejectionSerializer)
        evidence = workflow.review_evidence(evidence, by=request.user, accept=False, reason=data["reason"])
        return Response(self.get_serializer(evidence).data)


class ReminderViewSet(ReadOnlyViewSet):
    """The reminder ledger of your organisation: governance leads only."""

    serializer_class = serializers.ReminderSerializer
    filterset_class = filters.ReminderFilter
    permission_classes = [IsAuthenticated, IsGovernanceLead]
    ordering_fields = ["created_at", "review_due", "id"]
    lead_only = True

    def get_queryset(self) -> QuerySet:
        return permissions.visible_reminders(self.request.user).select_related("recipient")


def not_found(request: Request, unmatched: str = "") -> JsonResponse:
    """Unknown addresses under /api/ answer in the API's error shape, not with an HTML page."""
    return JsonResponse({"detail": "No such address in the API; see /api/docs/.", "code": "not_found"}, status=404)
