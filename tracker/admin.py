"""The governance lead's admin. Every status change here goes through ``tracker.workflow``."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy
from simple_history.admin import SimpleHistoryAdmin

from tracker import accounts, workflow
from tracker.models import (
    AccessLog,
    Evidence,
    Finding,
    Inspection,
    Judgement,
    Organisation,
    ProgressUpdate,
    Recommendation,
    RecommendationEvent,
    Reminder,
    Theme,
    User,
)

admin.site.site_header = "Safeguarding Recommendation Tracker"
# A token's key is a password: nobody should read one in the admin. Tokens are issued by command.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
admin.site.site_title = "Recommendation Tracker admin"
admin.site.index_title = "Improvement plan administration"


class ScopedAdmin(SimpleHistoryAdmin):
    """Confines staff to their own organisation; nothing is deleted (records are closed or superseded)."""

    organisation_path: str | None = None

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser or self.organisation_path is None:
            return qs
        return qs.filter(**{self.organisation_path: request.user.organisation_id})

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def history_view(self, request, object_id, extra_context=None):
        # Append-only logs (timeline, access log) have no field history of their own.
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)


class ReadOnlyAdmin(ScopedAdmin):
    """Records written only by the workflow: visible, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _scope_choices(request, queryset):
    if request.user.is_superuser:
        return queryset
    model = queryset.model
    if model is User:
        return queryset.filter(organisation_id=request.user.organisation_id, is_active=True)
    if model is Recommendation:
        return queryset.for_organisation(request.user.organisation_id)
    if model is Inspection or model is Organisation:
        field = "organisation_id" if model is Inspection else "pk"
        return queryset.filter(**{field: request.user.organisation_id})
    if model is Finding:
        return queryset.filter(inspection__organisation_id=request.user.organisation_id)
    return queryset


class ScopedChoicesMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _scope_choices(request, field.queryset)
        return field


@admin.register(Organisation)
class OrganisationAdmin(ScopedAdmin):
    organisation_path = "pk"
    list_display = ["name", "kind", "slug"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(User)
class UserAdmin(ScopedChoicesMixin, DjangoUserAdmin, SimpleHistoryAdmin):
    list_display = ["username", "first_name", "last_name", "email", "organisation", "role_names", "is_active"]
    list_filter = ["organisation", "groups", "is_active", "is_staff"]
    search_fields = ["username", "first_name", "last_name", "email"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Organisation", {"fields": ["organisation", "job_title", "escalation_contact"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Organisation", {"fields": ["email", "first_name", "last_name", "organisation", "groups"]}),
    ]

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(group.name for group in obj.groups.all())

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("groups")
        return qs if request.user.is_superuser else qs.filter(organisation_id=request.user.organisation_id)

    def get_readonly_fields(self, request, obj=None):
        # Only a platform superuser may grant superuser or raw permissions; leads manage roles.
        if request.user.is_superuser:
            return ["last_login", "date_joined"]
        return ["is_superuser", "user_permissions", "last_login", "date_joined"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: history and ownership must keep pointing at the person

    actions = ["unlock_sign_in", "deactivate"]

    # permissions=["change"]: a viewer may list users but must not lock or unlock anybody.
    @admin.action(
        description="Unlock sign-in of the selected users (forget their failed attempts)", permissions=["change"]
    )
    def unlock_sign_in(self, request, queryset) -> None:
        for user in queryset:
            axes_reset(username=user.username)
        self.message_user(request, f"Sign-in unlocked for {queryset.count()} user(s).")

    @admin.action(
        description="Deactivate the selected users (end their sessions, tokens and calendar links)",
        permissions=["change"],
    )
    def deactivate(self, request, queryset) -> None:
        users = list(queryset.exclude(pk=request.user.pk))
        ended = sum(accounts.deactivate_user(user, by=request.user) for user in users)
        self.message_user(request, f"{len(users)} user(s) deactivated; {ended} session(s) ended.")

    def save_model(self, request, obj, form, change) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
        if deactivating:
            # Unticking "active" ends their sessions, API token and calendar link now, not at next sign-in.
            ended = accounts.deactivate_user(obj, by=request.user)
            self.message_user(
                request, f"{obj} is deactivated: {ended} session(s) ended, API token and calendar link revoked."
            )


@admin.register(Theme)
class ThemeAdmin(ScopedAdmin):
    list_display = ["name", "slug", "finding_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        # Themes are shared between organisations; the count is of this organisation's findings only,
        # and comes with the list rather than as one query per row.
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs.annotate(finding_total=Count("findings", distinct=True))
        mine = Q(findings__inspection__organisation_id=request.user.organisation_id)
        return qs.annotate(finding_total=Count("findings", filter=mine, distinct=True))

    @admin.display(description="Findings", ordering="finding_total")
    def finding_count(self, obj: Theme) -> int:
        return obj.finding_total


class JudgementInline(admin.TabularInline):
    model = Judgement
    extra = 0
    can_delete = False


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    can_delete = False
    fields = ["reference", "kind", "title", "source_location"]
    show_change_link = True


@admin.register(Inspection)
class InspectionAdmin(ScopedChoicesMixin, ScopedAdmin):
    organisation_path = "organisation_id"
    list_display = ["title", "organisation", "inspectorate", "published_text", "published", "tracked"]
    list_filter = ["inspectorate", "organisation", "tracked"]
    search_fields = ["title", "programme", "slug"]
    inlines = [JudgementInline, FindingInline]
    change_list_template = "admin/tracker/inspection/change_list.html"

    def get_urls(self):
        # Governance leads import new inspections from CSV or Excel (tracker.imports); the view checks the role.
        from django.urls import path

        from tracker.oversight_views import admin_import

        view = self.admin_site.admin_view(lambda request: admin_import(request, self))
        return [path("import/", view, name="tracker_inspection_import"), *super().get_urls()]


@admin.register(Finding)
class FindingAdmin(ScopedChoicesMixin, ScopedAdmin):
    organisation_path = "inspection__organisation_id"
    list_display = ["reference", "title", "kind", "inspection"]
    list_filter = ["inspection", "kind", "themes"]
    search_fields = ["reference", "title", "summary", "quote"]
    filter_horizontal = ["themes"]
    list_select_related = ["inspection"]


class OverdueFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due_soon", "Due within 7 days"), ("not_overdue", "Not overdue")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.overdue(today)
        if self.value() == "due_soon":
            return queryset.due_for_review(today, 7).exclude(next_review_due__lt=today)
        if self.value() == "not_overdue":
            return queryset.exclude(pk__in=queryset.overdue(today).values("pk"))
        return queryset


class ProgressUpdateInline(admin.TabularInline):
    model = ProgressUpdate
    extra = 0
    can_delete = False
    fields = ["created_at", "author", "rag", "review_completed", "narrative"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EvidenceInline(admin.TabularInline):
    model = Evidence
    extra = 0
    can_delete = False
    fields = ["added_at", "added_by", "kind", "category", "description", "verdict", "reviewed_by", "rejection_reason"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = RecommendationEvent
    extra = 0
    can_delete = False
    fields = ["at", "action", "actor", "old_value", "new_value", "reason"]
    readonly_fields = fields
    verbose_name_plural = "timeline"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


WORKFLOW_ACTIONS = [
    ("", "No status change"),
    ("submit", "Submit for assurance"),
    ("close", "Accept and close (assurance reviewer, not the owner)"),
    ("reject", "Reject at assurance (reason needed)"),
    ("reopen", "Reopen (reason needed)"),
    ("supersede", "Supersede by another recommendation (reason needed)"),
]


class RecommendationAdminForm(forms.ModelForm):
    workflow_action = forms.ChoiceField(choices=WORKFLOW_ACTIONS, required=False, label="Status change")
    replacement = forms.ModelChoiceField(
        queryset=Recommendation.objects.none(),
        required=False,
        help_text="For superseding: the recommendation that replaces this one.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Needed to reject, reopen, supersede or move a target date. It is recorded in the timeline.",
    )
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Recommendation
        fields = ["title", "outcome_measure", "owner", "target_date", "review_interval_days"]

    request = None  # set by the admin

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version
            self.fields["replacement"].queryset = (
                _scope_choices(self.request, Recommendation.objects.with_related())
                .exclude(pk=self.instance.pk)
                .exclude(status=Recommendation.Status.SUPERSEDED)
            )

    def clean(self):
        data = super().clean()
        if self.instance.pk and not self.errors:
            # Run the whole change for real inside a savepoint that is always rolled back: the
            # workflow's own guards decide, and their messages become form errors.
            try:
                with transaction.atomic():
                    apply_admin_changes(self.instance.pk, self.request.user, data)
                    transaction.set_rollback(True)
            except (workflow.WorkflowError, PermissionDenied) as exc:
                raise ValidationError(str(exc)) from exc
        return data


def apply_admin_changes(pk: int, by: User, data: dict) -> None:
    rec = Recommendation.objects.with_related().get(pk=pk)
    version = data.get("loaded_version")
    reason = data.get("reason") or ""
    rec = workflow.edit_details(
        rec, by=by, title=data["title"], outcome_measure=data["outcome_measure"], expected_version=version
    )
    rec = workflow.assign_owner(rec, by=by, owner=data["owner"], reason=reason)
    rec = workflow.change_target_date(rec, by=by, target_date=data["target_date"], reason=reason)
    rec = workflow.change_review_interval(rec, by=by, days=data["review_interval_days"], reason=reason)
    action = data.get("workflow_action")
    if action == "submit":
        workflow.submit_for_assurance(rec, by=by)
    elif action == "close":
        workflow.close(rec, by=by, reason=reason)
    elif action == "reject":
        workflow.reject(rec, by=by, reason=reason)
    elif action == "reopen":
        workflow.reopen(rec, by=by, reason=reason)
    elif action == "supersede":
        if data.get("replacement") is None:
            raise workflow.WorkflowError("Choose the recommendation that replaces this one.")
        workflow.supersede(rec, by=by, replacement=data["replacement"], reason=reason)


class RecommendationActionForm(ActionForm):
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), required=False, label="Owner")
    interval_days = forms.IntegerField(min_value=1, required=False, label="Review interval (days)")


@admin.register(Recommendation)
class RecommendationAdmin(ScopedChoicesMixin, ScopedAdmin):
    organisation_path = "finding__inspection__organisation_id"
    form = RecommendationAdminForm
    action_form = RecommendationActionForm
    list_display = [
        "reference",
        "title",
        "owner",
        "status",
        "rag",
        "next_review_due",
        "overdue",
        "target_date",
        "inspection",
    ]
    list_display_links = ["reference", "title"]
    list_filter = [
        ("finding__inspection", admin.RelatedOnlyFieldListFilter),
        "status",
        "rag",
        ("owner", admin.RelatedOnlyFieldListFilter),
        ("finding__themes", admin.RelatedOnlyFieldListFilter),
        OverdueFilter,
    ]
    search_fields = ["finding__reference", "title", "finding__summary", "owner__username", "owner__last_name"]
    list_select_related = ["finding__inspection", "owner"]
    ordering = ["next_review_due", "finding__reference"]
    inlines = [ProgressUpdateInline, EvidenceInline, EventInline]
    actions = ["assign_owner", "set_review_interval"]
    readonly_fields = [
        "finding_summary",
        "status",
        "superseded_by",
        "next_review_due",
        "version",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["finding_summary", "title", "outcome_measure"]}),
        ("Ownership and dates", {"fields": ["owner", "target_date", "review_interval_days", "next_review_due"]}),
        (
            "Status",
            {"fields": ["status", "superseded_by", "workflow_action", "replacement", "reason", "loaded_version"]},
        ),
        ("Record", {"fields": ["version", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="Ref", ordering="finding__reference")
    def reference(self, obj: Recommendation) -> str:
        return obj.finding.reference

    @admin.display(description="Inspection", ordering="finding__inspection__title")
    def inspection(self, obj: Recommendation) -> str:
        return obj.finding.inspection.title

    @admin.display(boolean=True, description="Overdue")
    def overdue(self, obj: Recommendation) -> bool:
        return obj.is_overdue()

    @admin.display(description="Finding")
    def finding_summary(self, obj: Recommendation) -> str:
        finding = obj.finding
        return f"{finding.reference} ({finding.get_kind_display()}): {finding.summary} “{finding.quote}” — {finding.provenance}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["fields"] = ["finding", "title", "outcome_measure", "review_interval_days"]
            form = forms.modelform_factory(Recommendation, fields=kwargs["fields"])
            form.base_fields["finding"].queryset = _scope_choices(
                request, Finding.objects.filter(recommendation__isnull=True)
            )
            return form
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["finding", "title", "outcome_measure", "review_interval_days"]})]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            created = workflow.create_recommendation(
                form.cleaned_data["finding"],
                by=request.user,
                interval_days=form.cleaned_data["review_interval_days"],
                title=form.cleaned_data["title"],
                outcome_measure=form.cleaned_data["outcome_measure"],
                reason="Created in the admin",
            )
            obj.pk = created.pk
            return
        apply_admin_changes(obj.pk, request.user, form.cleaned_data)

    @admin.action(description="Assign the chosen owner to the selected recommendations")
    def assign_owner(self, request, queryset) -> None:
        owner = RecommendationActionForm(request.POST).fields["owner"].clean(request.POST.get("owner") or None)
        if owner is None:
            self.message_user(request, "Choose an owner in the box beside the action first.", messages.ERROR)
            return
        self._bulk(
            request,
            queryset,
            lambda rec: workflow.assign_owner(rec, by=request.user, owner=owner, reason="Bulk assignment"),
        )

    @admin.action(description="Set the chosen review interval on the selected recommendations")
    def set_review_interval(self, request, queryset) -> None:
        try:
            days = (
                RecommendationActionForm(request.POST).fields["interval_days"].clean(request.POST.get("interval_days"))
            )
        except ValidationError:
            days = None
        if not days:
            self.message_user(
                request, "Enter a review interval of at least one day beside the action first.", messages.ERROR
            )
            return
        self._bulk(
            request,
            queryset,
            lambda rec: workflow.change_review_interval(rec, by=request.user, days=days, reason="Bulk change"),
        )

    def _bulk(self, request, queryset, change) -> None:
        done, refused = 0, []
        for rec in queryset.with_related():
            try:
                change(rec)
                done += 1
            except (workflow.WorkflowError, PermissionDenied) as exc:
                refused.append(f"{rec.reference}: {exc}")
        if done:
            self.message_user(request, f"Changed {done} recommendation(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)


@admin.register(ProgressUpdate)
class ProgressUpdateAdmin(ReadOnlyAdmin):
    organisation_path = "recommendation__finding__inspection__organisation_id"
    list_display = ["recommendation", "author", "created_at", "rag", "review_completed"]
    list_filter = ["rag", "review_completed", "recommendation__finding__inspection"]
    search_fields = ["narrative", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "author"]


class EvidenceActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason (for rejecting)")


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    organisation_path = "recommendation__finding__inspection__organisation_id"
    action_form = EvidenceActionForm
    list_display = ["recommendation", "kind", "category", "description", "added_by", "added_at", "verdict"]
    list_filter = ["verdict", "kind", "category", "recommendation__finding__inspection"]
    search_fields = ["description", "original_filename", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "added_by"]
    exclude = ["file"]  # files are reached only through the permission-checked download view
    actions = ["accept", "reject"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("tracker.change_evidence"):
            actions.pop("accept", None)
            actions.pop("reject", None)
        return actions

    @admin.action(description="Accept the selected evidence")
    def accept(self, request, queryset) -> None:
        self._verdict(request, queryset, accept=True, reason="")

    @admin.action(description="Reject the selected evidence (with the reason given)")
    def reject(self, request, queryset) -> None:
        self._verdict(request, queryset, accept=False, reason=request.POST.get("reason", ""))

    def _verdict(self, request, queryset, *, accept: bool, reason: str) -> None:
        for item in queryset.select_related("recommendation__finding__inspection"):
            try:
                workflow.review_evidence(item, by=request.user, accept=accept, reason=reason)
                self.message_user(request, f"{item}: {'accepted' if accept else 'rejected'}.", messages.SUCCESS)
            except (workflow.WorkflowError, PermissionDenied) as exc:
                self.message_user(request, f"{item}: {exc}", messages.ERROR)


@admin.register(RecommendationEvent)
class RecommendationEventAdmin(ReadOnlyAdmin):
    organisation_path = "recommendation__finding__inspection__organisation_id"
    list_display = ["at", "recommendation", "action", "actor", "old_value", "new_value", "reason"]
    list_filter = ["action", "recommendation__finding__inspection"]
    search_fields = ["reason", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "actor"]
    date_hierarchy = "at"


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    organisation_path = "recommendation__finding__inspection__organisation_id"
    list_display = [
        "recommendation",
        "recipient",
        "stage",
        "review_due",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    ]
    search_fields = ["recipient__username", "recipient__email", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "recipient"]
    date_hierarchy = "created_at"
    actions = ["retry_now"]

    class NeedsAttentionFilter(admin.SimpleListFilter):
        title = "needs attention"
        parameter_name = "attention"

        def lookups(self, request, model_admin):
            return [
                ("undelivered", "Failed or dead (not delivered)"),
                ("retrying", "Waiting to retry after a temporary failure"),
            ]

        def queryset(self, request, queryset):
            if self.value() == "undelivered":
                return queryset.filter(state__in=[Reminder.State.FAILED, Reminder.State.DEAD])
            if self.value() == "retrying":
                return queryset.filter(state=Reminder.State.PENDING, attempts__gt=0)
            return queryset

    list_filter = [NeedsAttentionFilter, "state", "stage", "review_due"]

    def has_retry_permission(self, request) -> bool:
        from tracker.permissions import is_governance_lead

        return request.user.is_superuser or is_governance_lead(request.user)

    @admin.action(description="Retry the selected failed or dead reminders now", permissions=["retry"])
    def retry_now(self, request, queryset) -> None:
        from tracker import reminders

        count = reminders.retry_now(queryset.values_list("pk", flat=True))
        skipped = queryset.count() - count
        self.message_user(request, f"{count} reminder(s) queued for another attempt.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} reminder(s) were not failed or dead, so were left alone.", messages.WARNING
            )


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdmin):
    organisation_path = "user__organisation_id"
    list_display = ["at", "user", "action", "object_repr"]
    list_filter = ["action"]
    search_fields = ["user__username", "object_repr"]
    list_select_related = ["user"]
    date_hierarchy = "at"
