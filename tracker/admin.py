"""The governance lead's admin. Every status change here goes through ``tracker.workflow``.

Isolation: everyone works inside their own organisation. Every admin here is a ``TenantAdmin``: its
rows are those ``tracker.permissions`` lets the signed-in person see (another organisation's object is
404), list filters may use only the lookups declared on the page, list-filter and form choices are
built on the same scoped querysets, and history is read-only (django-simple-history's Revert is off:
it would write past the workflow). Shared configuration (themes, roles, the reminder schedule) is the
platform operator's: a superuser who belongs to no organisation. A superuser who does belong to an
organisation is treated as a member of it, with the powers of their role and nothing across tenants.
"""

from __future__ import annotations

import django_celery_beat.admin  # noqa: F401  (registers the schedule admins, re-registered below)
from axes.utils import reset as axes_reset
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from rest_framework.authtoken.models import TokenProxy
from simple_history.admin import SimpleHistoryAdmin

from tracker import accounts, policy, workflow
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    AccessLog,
    Evidence,
    Finding,
    Inspection,
    Judgement,
    MeasureDataPoint,
    Organisation,
    OutcomeMeasure,
    PlanAction,
    ProgressUpdate,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Reminder,
    Source,
    Theme,
    User,
)
from tracker.permissions import (
    Action,
    eligible_owners,
    is_governance_lead,
    visible_data_points,
    visible_evidence,
    visible_findings,
    visible_inspections,
    visible_measures,
    visible_organisations,
    visible_plan_actions,
    visible_recommendations,
    visible_reminders,
)

admin.site.site_header = "Safeguarding Recommendation Tracker"
# A token's key is a password: nobody should read one in the admin. Tokens are issued by command.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
admin.site.site_title = "Recommendation Tracker admin"
admin.site.index_title = "Improvement plan administration"


def is_operator(user: User) -> bool:
    """The platform operator: a superuser who belongs to no organisation. The only one who sees across
    organisations, and the only one who changes what organisations share."""
    return bool(user.is_active and user.is_superuser and user.organisation_id is None)


# Models every organisation shares: offered in choices as they are; changed only by the operator.
_SHARED_MODELS = (Theme, Group, Permission)


def _same_organisation_users(user: User) -> QuerySet[User]:
    if user.organisation_id is None:
        return User.objects.none()
    return User.objects.filter(organisation_id=user.organisation_id)


def _rows_of(model: type, user: User) -> QuerySet | None:
    """What ``user`` may see of ``model``, from ``tracker.permissions``; None for shared models."""
    recommendations = visible_recommendations(user)
    rules = {
        Organisation: lambda: visible_organisations(user),
        User: lambda: _same_organisation_users(user),
        Inspection: lambda: visible_inspections(user),
        Finding: lambda: visible_findings(user),
        Recommendation: lambda: recommendations,
        Evidence: lambda: visible_evidence(user),
        ProgressUpdate: lambda: ProgressUpdate.objects.filter(recommendation__in=recommendations),
        RecommendationEvent: lambda: RecommendationEvent.objects.filter(recommendation__in=recommendations),
        Reminder: lambda: visible_reminders(user),
        AccessLog: lambda: AccessLog.objects.filter(user__in=_same_organisation_users(user)),
        Judgement: lambda: Judgement.objects.filter(inspection__in=visible_inspections(user)),
        Source: lambda: Source.objects.filter(inspection__in=visible_inspections(user)),
        Quotation: lambda: Quotation.objects.filter(finding__in=visible_findings(user)),
        # Issue 16: the plan and measures.
        PlanAction: lambda: visible_plan_actions(user),
        OutcomeMeasure: lambda: visible_measures(user),
        MeasureDataPoint: lambda: visible_data_points(user),
    }
    if model in _SHARED_MODELS:
        return None
    if model not in rules:
        return model._default_manager.none()  # a model nobody thought about: nothing, not everything
    return rules[model]()


def scoped(request, queryset: QuerySet) -> QuerySet:
    """``queryset`` cut down to what the signed-in person may see (everything for the operator)."""
    if is_operator(request.user):
        return queryset
    rows = _rows_of(queryset.model, request.user)
    if rows is None:
        return queryset
    return queryset.filter(pk__in=rows.values("pk"))


# The lookups a list filter may put in the query string, beside its field path. Anything else (say
# ``auth_token__key__startswith`` or ``password__startswith``) is refused: it would be an oracle.
_FILTER_SUFFIXES = ("exact", "isnull", "id__exact", "gte", "lt", "isempty")
_DATE_PARTS = ("year", "month", "day")


class VisibleRelatedFilter(admin.RelatedFieldListFilter):
    """Offers the related rows the signed-in person may see (their organisation's inspections; the shared
    themes): one small query, where RelatedOnlyFieldListFilter reads every recommendation to find them."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        related = scoped(request, field.related_model._default_manager.order_by(*ordering))
        return [(obj.pk, str(obj)) for obj in related]


def _only_related(model: type, entry):
    """A relational list filter offers only the related rows that appear in the scoped list."""
    if isinstance(entry, str) and get_fields_from_path(model, entry)[-1].is_relation:
        return (entry, admin.RelatedOnlyFieldListFilter)
    return entry


def autocomplete_for(request, model: type, field_name: str) -> bool:
    """Is ``request`` the admin's autocomplete asking for ``model.field_name``'s choices?

    A choice among thousands (owners, findings, recommendations) is searched as it is typed, not listed in
    the page; the remote model's admin narrows its search results to what that field accepts, and the
    form still validates the choice against its own queryset."""
    match = request.resolver_match
    return (
        match is not None
        and match.url_name == "autocomplete"
        and request.GET.get("app_label") == model._meta.app_label
        and request.GET.get("model_name") == model._meta.model_name
        and request.GET.get("field_name") == field_name
    )


class TenantAdminMixin:
    """Confines every door of a ModelAdmin to the signed-in person's organisation (see the module)."""

    def get_queryset(self, request):
        return scoped(request, super().get_queryset(request))

    def get_list_filter(self, request):
        return [_only_related(self.model, entry) for entry in super().get_list_filter(request)]

    def lookup_allowed(self, lookup, value, request) -> bool:
        allowed: set[str] = set()
        for entry in self.get_list_filter(request):
            if isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter):
                allowed.add(entry.parameter_name)
                continue
            path = entry[0] if isinstance(entry, (tuple, list)) else entry
            allowed |= {path, *(f"{path}__{suffix}" for suffix in _FILTER_SUFFIXES)}
        if self.date_hierarchy:
            allowed |= {f"{self.date_hierarchy}__{part}" for part in _DATE_PARTS}
        return lookup in allowed

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _choices(request, field.queryset)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _choices(request, field.queryset)
        return field

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another organisation's object, or none at all: the same plain 404 either way.
        raise Http404(f"No {opts.verbose_name} with that id.")

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and not self.get_actions(request):
            raise PermissionDenied  # nothing here that this person may do
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A POST that comes back as the form (with errors) saved nothing: undo any write made on the
        # way (RecommendationAdmin does its one real run of the workflow while validating).
        if request.method == "POST":
            transaction.set_rollback(True)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # History: read-only, and only of what this person can see.

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such record.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):
            # Append-only logs (timeline, access log, reminders) have no field history of their own.
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """One past version, to read. Revert is off for everyone: it would write an old version back past
        the workflow's guards and the organisation's bounds, so nothing is ever posted here."""
        obj = self.get_object(request, unquote(object_id))
        kept = hasattr(self.model._meta, "simple_history_manager_attribute")
        if obj is None or not kept or not str(version_id).isdigit():
            raise Http404("No such record.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("Past versions cannot be restored here.")
        history = getattr(self.model, self.model._meta.simple_history_manager_attribute)
        record = history.filter(**{self.model._meta.pk.attname: obj.pk, "history_id": version_id}).first()
        if record is None:
            raise Http404("No such version.")
        context = {
            **self.admin_site.each_context(request),
            "title": f"{obj} as it was on {timezone.localtime(record.history_date):%d %B %Y %H:%M}",
            "opts": self.model._meta,
            "object": obj,
            "record": record,
            "rows": self._version_rows(request, record),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/tracker/history_version.html", context)

    def _version_rows(self, request, record) -> list[tuple[str, object]]:
        rows = []
        for field in self.model._meta.concrete_fields:
            if not hasattr(record, field.attname):
                continue  # not kept in history (a password, say)
            value = getattr(record, field.attname)
            if field.choices:
                value = dict(field.flatchoices).get(value, value)
            elif field.is_relation and value is not None:
                # Named only if this person may see it now; otherwise just its number.
                related = scoped(request, field.related_model._default_manager.filter(pk=value)).first()
                value = related if related is not None else f"#{value}"
            rows.append((capfirst(field.verbose_name), value))
        return rows

    def revert_disabled(self, request, obj=None) -> bool:
        return True


def _choices(request, queryset: QuerySet) -> QuerySet:
    """Choices in admin forms: only the signed-in person's organisation's rows (shared models as is)."""
    if queryset.model is User and not is_operator(request.user):
        return queryset.filter(pk__in=_same_organisation_users(request.user).filter(is_active=True).values("pk"))
    return scoped(request, queryset)


class TenantAdmin(TenantAdminMixin, SimpleHistoryAdmin):
    """Nothing is deleted (records are closed or superseded)."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(TenantAdmin):
    """Records written only by the workflow: visible, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OperatorChangesOnly:
    """Shared configuration: those with the view permission may look; only the operator changes it."""

    def has_add_permission(self, request, *args) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)


class OperatorOnly(OperatorChangesOnly):
    """Platform machinery (the reminder schedule): the operator's alone, invisible to everyone else."""

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)


def _reregister(model: type, mixin: type) -> None:
    current = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(current.__name__, (mixin, current), {"__module__": __name__}))


# Disabling a periodic task turned reminders off for every organisation: the schedule is the operator's.
for _model in (PeriodicTask, CrontabSchedule, IntervalSchedule, ClockedSchedule, SolarSchedule):
    if admin.site.is_registered(_model):
        _reregister(_model, OperatorOnly)
# Roles are shared by every organisation: leads give people roles, only the operator changes a role.
if admin.site.is_registered(Group):
    _reregister(Group, OperatorChangesOnly)


@admin.register(Organisation)
class OrganisationAdmin(OperatorChangesOnly, TenantAdmin):
    """Leads see their own organisation; naming, slugs and new organisations are the operator's."""

    list_display = ["name", "kind", "slug"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(User)
class UserAdmin(TenantAdminMixin, DjangoUserAdmin, SimpleHistoryAdmin):
    list_display = ["username", "first_name", "last_name", "email", "organisation", "role_names", "is_active"]
    autocomplete_fields = ["escalation_contact"]  # searched as typed: an organisation may have thousands
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
        return super().get_queryset(request).select_related("organisation").prefetch_related("groups")

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if autocomplete_for(request, Recommendation, "owner"):
            queryset = queryset.filter(pk__in=eligible_owners(request.user.organisation_id).values("pk"))
        elif autocomplete_for(request, User, "escalation_contact"):
            queryset = queryset.filter(is_active=True)
        return queryset, may_have_duplicates

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None and not is_operator(request.user):
            # A lead adds people to their own organisation only (set in save_model).
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f != "organisation"]})
                for name, options in fieldsets
            ]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # Only the operator grants superuser or raw permissions, or moves people between organisations.
        if is_operator(request.user):
            return ["last_login", "date_joined"]
        return ["organisation", "is_superuser", "user_permissions", "last_login", "date_joined"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A superuser's account (and password) is the operator's to change, even inside the organisation.
        if obj is not None and obj.is_superuser and not is_operator(request.user):
            return False
        return super().has_change_permission(request, obj)

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
        if not is_operator(request.user):
            users = [user for user in users if not user.is_superuser]
        ended = sum(accounts.deactivate_user(user, by=request.user) for user in users)
        self.message_user(request, f"{len(users)} user(s) deactivated; {ended} session(s) ended.")

    def save_model(self, request, obj, form, change) -> None:
        if not change and not is_operator(request.user):
            obj.organisation_id = request.user.organisation_id
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
        if deactivating:
            # Unticking "active" ends their sessions, API token and calendar link now, not at next sign-in.
            ended = accounts.deactivate_user(obj, by=request.user)
            self.message_user(
                request, f"{obj} is deactivated: {ended} session(s) ended, API token and calendar link revoked."
            )


@admin.register(Theme)
class ThemeAdmin(OperatorChangesOnly, TenantAdmin):
    """Themes are shared by every organisation's dashboard: leads read them, the operator names them."""

    list_display = ["name", "slug", "finding_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        # The count is of this organisation's findings only, and comes with the list rather than as
        # one query per row.
        qs = super().get_queryset(request)
        if is_operator(request.user):
            return qs.annotate(finding_total=Count("findings", distinct=True))
        mine = Q(findings__in=visible_findings(request.user))
        return qs.annotate(finding_total=Count("findings", filter=mine, distinct=True))

    @admin.display(description="Findings", ordering="finding_total")
    def finding_count(self, obj: Theme) -> int:
        return obj.finding_total


class ScopedInline:
    """An inline's choice lists (a judgement's or quotation's source) offer only the organisation's rows."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _choices(request, field.queryset)
        return field


class JudgementInline(ScopedInline, admin.TabularInline):
    model = Judgement
    extra = 0
    can_delete = False
    fields = ["area", "grade", "source", "inferred_because"]


@admin.register(Inspection)
class InspectionAdmin(TenantAdmin):
    list_display = ["title", "organisation", "inspectorate", "published_text", "published", "tracked"]
    list_filter = ["inspectorate", "organisation", "tracked"]
    search_fields = ["title", "programme", "slug"]
    # Its findings are a link to their own list, not an inline: an inspection may have thousands, and a
    # form of every one of them took 19 s and 9 MB at 5,000.
    inlines = [JudgementInline]
    # The PCC's response date follows from publication. The action plan and revisit dates are the lead's to
    # set on the inspection's dates page, which asks policy.decide_inspection_dates, wants a reason to move
    # or clear one and refuses a stale form; here they are only shown, so no second door bypasses that.
    readonly_fields = ["findings", "pcc_response_due", "action_plan_due", "revisit_due", "set_dates"]

    @admin.display(description="Findings")
    def findings(self, obj: Inspection) -> str:
        if not obj.pk:
            return "Add findings once the inspection is saved, or import the inspection with its findings."
        count = obj.findings.count()
        url = f"{reverse('admin:tracker_finding_changelist')}?inspection__id__exact={obj.pk}"
        return format_html('<a href="{}">{} finding{}</a>', url, f"{count:,}", "" if count == 1 else "s")

    @admin.display(description="PCC's published response due (56 days, Police Act 1996 s.55)")
    def pcc_response_due(self, obj: Inspection) -> str:
        due = obj.pcc_response_due if obj.pk else None
        return f"{due:%-d %B %Y}" if due else "Not applicable, or publication date not known"

    @admin.display(description="Action plan and revisit dates")
    def set_dates(self, obj: Inspection) -> str:
        if not obj.pk:
            return "Set them on the inspection's dates page once it is saved."
        return format_html(
            '<a href="{}">Set or move them on the dates page</a>', reverse("tracker:inspection-dates", args=[obj.pk])
        )

    change_list_template = "admin/tracker/inspection/change_list.html"

    def get_urls(self):
        # Governance leads import new inspections from CSV or Excel (tracker.imports); the view checks the role.
        from django.urls import path

        from tracker.oversight_views import admin_import

        view = self.admin_site.admin_view(lambda request: admin_import(request, self))
        return [path("import/", view, name="tracker_inspection_import"), *super().get_urls()]


class QuotationInline(ScopedInline, admin.TabularInline):
    model = Quotation
    extra = 0
    can_delete = False
    fields = ["position", "source", "text", "location"]


@admin.register(Finding)
class FindingAdmin(TenantAdmin):
    list_display = ["reference", "title", "kind", "inspection"]
    list_filter = ["inspection", "kind", "themes"]
    search_fields = ["reference", "title", "summary", "quotations__text"]
    filter_horizontal = ["themes"]
    list_select_related = ["inspection"]
    inlines = [QuotationInline]

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if autocomplete_for(request, Recommendation, "finding"):
            queryset = queryset.filter(recommendation__isnull=True)  # one recommendation per finding
        return queryset, may_have_duplicates


@admin.register(Source)
class SourceAdmin(TenantAdmin):
    """The publications findings quote; the kind decides whether words are shown as the inspectorate's."""

    list_display = ["title", "publisher", "kind", "inspection", "published_text", "published"]
    list_filter = ["kind", "inspection"]
    search_fields = ["title", "publisher", "key"]
    list_select_related = ["inspection"]


class OverdueFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        soon = f"Due within {settings.REMINDER_LEAD_DAYS} days"
        return [("overdue", "Overdue"), ("due_soon", soon), ("not_overdue", "Not overdue")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.overdue(today)
        if self.value() == "due_soon":
            return queryset.due_soon(today)
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


# The status changes the change form can make: form value -> (label, the policy action it needs).
TRANSITIONS = {
    "submit": ("Submit for assurance", Action.SUBMIT),
    "close": ("Accept and close (by someone who did not do the work)", Action.CLOSE),
    "reject": ("Return to the owner: reject at assurance (reason needed)", Action.RETURN),
    "reopen": ("Reopen (reason needed)", Action.REOPEN),
    "supersede": ("Supersede by another recommendation (reason needed)", Action.SUPERSEDE),
}
# The form's fields and the action that must be allowed for each to be editable.
FIELD_ACTIONS = {
    "title": Action.EDIT,
    "outcome_measure": Action.EDIT,
    "owner": Action.REASSIGN,
    "target_date": Action.CHANGE_TARGET_DATE,
    "remove_target_date": Action.CHANGE_TARGET_DATE,
    "review_interval_days": Action.CHANGE_REVIEW_INTERVAL,
}
_NEEDS_REASON = (Action.REASSIGN, Action.CHANGE_TARGET_DATE, Action.CHANGE_REVIEW_INTERVAL)
NO_EMPTY_TARGET_DATE = (
    "An empty box does not remove the target date. To take it away, tick “Remove the target date” and give a reason."
)


class RecommendationAdminForm(forms.ModelForm):
    remove_target_date = forms.BooleanField(
        required=False, label="Remove the target date", help_text="Takes the agreed date away; give a reason."
    )
    workflow_action = forms.ChoiceField(
        choices=[("", "No status change"), *((key, label) for key, (label, _action) in TRANSITIONS.items())],
        required=False,
        label="Status change",
    )
    replacement = forms.ModelChoiceField(
        queryset=Recommendation.objects.none(),
        required=False,
        help_text="For superseding: the recommendation that replaces this one.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Needed to return, reopen, supersede, or move or remove a target date. It is recorded in the timeline.",
    )
    loaded_version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Recommendation
        fields = ["title", "outcome_measure", "owner", "target_date", "review_interval_days"]

    # Set by RecommendationAdmin.get_form: who is asking, and what policy lets them do to this one now.
    request = None
    decisions: dict = {}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rec = self.instance
        self.fields["loaded_version"].initial = rec.version
        if "workflow_action" in self.fields:
            # Offered: only what policy allows now. Anything else posted is refused with policy's reason.
            allowed = [(key, label) for key, (label, action) in TRANSITIONS.items() if self.decisions[action]]
            self.fields["workflow_action"].widget.choices = [("", "No status change"), *allowed]
        if "owner" in self.fields:
            # The current owner stays selectable even if no longer eligible, so other edits still save.
            mine = Q(pk__in=eligible_owners(rec.organisation_id).values("pk")) | Q(pk=rec.owner_id)
            self.fields["owner"].queryset = User.objects.filter(mine).order_by("last_name", "first_name", "username")
        if "replacement" in self.fields:
            replacement = self.fields["replacement"]
            replacement.widget = AutocompleteSelect(Recommendation._meta.get_field("superseded_by"), admin.site)
            replacement.widget.choices = replacement.choices
            replacement.queryset = (
                visible_recommendations(self.request.user)
                .with_related()
                .exclude(pk=rec.pk)
                .exclude(status=Recommendation.Status.SUPERSEDED)
            )

    def clean_workflow_action(self) -> str:
        value = self.cleaned_data.get("workflow_action") or ""
        if value:
            decision = self.decisions[TRANSITIONS[value][1]]
            if not decision:
                raise ValidationError(decision.reason)
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if "target_date" in self.fields and not data.get("remove_target_date") and data.get("target_date") is None:
            if self.instance.target_date is not None:
                raise ValidationError({"target_date": NO_EMPTY_TARGET_DATE})
        # The one real run: the workflow's own guards decide on the locked row, and their refusals
        # become form errors. Nothing stays on error: a form shown again after a POST rolls back the
        # whole request, changes made before the refusal included (TenantAdminMixin.render_change_form).
        try:
            apply_admin_changes(self.instance.pk, self.request.user, data, fields=set(self.fields))
        except (workflow.WorkflowError, PermissionDenied) as exc:
            raise ValidationError(str(exc)) from exc
        return data


def apply_admin_changes(pk: int, by: User, data: dict, fields: set[str]) -> None:
    """Make the changes the form asks for, each through its workflow function, only where one changed."""
    rec = Recommendation.objects.with_related().get(pk=pk)
    if rec.version != data["loaded_version"]:
        raise workflow.StaleRecommendation(
            "This recommendation was changed by someone else while you were working on it. "
            "Nothing was saved; reload the page to see the latest version and try again."
        )
    reason = data.get("reason") or ""

    def changed(name: str) -> bool:
        return name in fields and data.get(name) != getattr(rec, name)

    if changed("title") or changed("outcome_measure"):
        rec = workflow.edit_details(rec, by=by, title=data["title"], outcome_measure=data["outcome_measure"])
    if changed("owner"):
        rec = workflow.assign_owner(rec, by=by, owner=data["owner"], reason=reason)
    if data.get("remove_target_date"):
        if data.get("target_date") not in (None, rec.target_date):
            raise workflow.InvalidInput("Either remove the target date or enter a new one, not both.")
        rec = workflow.remove_target_date(rec, by=by, reason=reason)
    elif changed("target_date"):
        rec = workflow.change_target_date(rec, by=by, target_date=data["target_date"], reason=reason)
    if changed("review_interval_days"):
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
            raise workflow.InvalidInput("Choose the recommendation that replaces this one.")
        workflow.supersede(rec, by=by, replacement=data["replacement"], reason=reason)


class RecommendationAddForm(forms.ModelForm):
    """A new recommendation for one of the organisation's findings, created once, while validating."""

    class Meta:
        model = Recommendation
        fields = ["finding", "title", "outcome_measure", "review_interval_days"]

    request = None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            created = workflow.create_recommendation(
                data["finding"],
                by=self.request.user,
                interval_days=data["review_interval_days"],
                title=data["title"],
                outcome_measure=data["outcome_measure"],
                reason="Created in the admin",
            )
        except (workflow.WorkflowError, PermissionDenied) as exc:
            raise ValidationError(str(exc)) from exc
        self.instance = created  # so the model checks that follow see the saved row, not a duplicate
        return data


class RecommendationActionForm(ActionForm):
    # Plain values: the owner's choices are filled per request (RecommendationAdmin.changelist_view),
    # and each action looks its value up again among what the lead may use, with its own message.
    owner = forms.CharField(
        required=False, label="Owner", widget=AutocompleteSelect(Recommendation._meta.get_field("owner"), admin.site)
    )
    interval_days = forms.CharField(
        required=False,
        label="Review interval (days)",
        widget=forms.NumberInput(attrs={"min": 1, "max": MAX_REVIEW_INTERVAL_DAYS}),
    )


@admin.register(Recommendation)
class RecommendationAdmin(TenantAdmin):
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
        ("finding__inspection", VisibleRelatedFilter),
        "status",
        "rag",
        # No owner filter: it would list every owner of the organisation (thousands) on every page. The
        # search finds an owner's recommendations by username or last name.
        ("finding__themes", VisibleRelatedFilter),
        OverdueFilter,
    ]
    search_fields = ["finding__reference", "title", "finding__summary", "owner__username", "owner__last_name"]
    search_help_text = "Reference, title, the finding's summary, or the owner's username or last name."
    list_select_related = ["finding__inspection", "owner"]
    autocomplete_fields = ["owner", "finding"]
    show_full_result_count = False  # one count of the filtered rows is enough
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
        quoted = f" {finding.quote_label}: “{finding.quote}” — {finding.provenance}" if finding.quote else ""
        return f"{finding.reference} ({finding.get_kind_display()}): {finding.summary}{quoted}"

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if autocomplete_for(request, Recommendation, "superseded_by"):
            # A replacement (the change form's): one that is not itself replaced, named with its reference.
            queryset = queryset.exclude(status=Recommendation.Status.SUPERSEDED).select_related("finding")
        return queryset, may_have_duplicates

    def _decisions(self, request, obj: Recommendation) -> dict:
        """``policy.decisions`` for this person and recommendation, once per request."""
        cache = request.__dict__.setdefault("_tracker_decisions", {})
        if obj.pk not in cache:
            cache[obj.pk] = policy.decisions(request.user, obj)
        return cache[obj.pk]

    def _editable(self, request, obj: Recommendation) -> set[str]:
        """The change form's fields this person may use on this recommendation now."""
        if not super().has_change_permission(request, obj):
            return set()
        allowed = self._decisions(request, obj)
        fields = {name for name, action in FIELD_ACTIONS.items() if allowed[action]}
        if obj.target_date is None:
            fields.discard("remove_target_date")
        transitions = [key for key, (_label, action) in TRANSITIONS.items() if allowed[action]]
        if transitions:
            fields.add("workflow_action")
        if "supersede" in transitions:
            fields.add("replacement")
        if transitions or any(allowed[action] for action in _NEEDS_REASON):
            fields.add("reason")
        if fields:
            fields.add("loaded_version")
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        # A recommendation on which policy allows this person nothing (superseded, say) is view-only.
        if obj is None:
            return super().has_change_permission(request, obj)
        return bool(self._editable(request, obj))

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["finding", "title", "outcome_measure", "review_interval_days"]})]
        editable = self._editable(request, obj)
        dates = ["owner", "target_date", "remove_target_date", "review_interval_days", "next_review_due"]
        status = ["status", "superseded_by", "workflow_action", "replacement", "reason", "loaded_version"]
        declared = set(RecommendationAdminForm.declared_fields)
        return [
            (None, {"fields": ["finding_summary", "title", "outcome_measure"]}),
            ("Ownership and dates", {"fields": [f for f in dates if f not in declared or f in editable]}),
            ("Status", {"fields": [f for f in status if f not in declared or f in editable]}),
            ("Record", {"fields": ["version", "created_at", "updated_at"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        editable = self._editable(request, obj)
        refused = [name for name in FIELD_ACTIONS if name not in editable and name != "remove_target_date"]
        return [*self.readonly_fields, *refused]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            form = super().get_form(request, obj, change=change, form=RecommendationAddForm, **kwargs)
            form = type(form.__name__, (form,), {"request": request})
            finding = form.base_fields["finding"]
            finding.queryset = scoped(request, Finding.objects.filter(recommendation__isnull=True))
            return form
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request, "decisions": self._decisions(request, obj)})

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change) -> None:
        # The work was done, once, by the form's clean() through the workflow (which saved and recorded
        # it); saving the form's copy of the row here would write past the workflow.
        if not change:
            obj.pk = form.instance.pk

    def save_related(self, request, form, formsets, change) -> None:
        # The inlines are read-only views of the timeline, updates and evidence: nothing of theirs is saved.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        action_form = getattr(response, "context_data", {}).get("action_form")
        if action_form is not None:
            # Searched as it is typed (autocomplete_for): the organisation's eligible owners, never listed.
            chooser = forms.ModelChoiceField(queryset=eligible_owners(request.user.organisation_id))
            action_form.fields["owner"].widget.choices = chooser.choices
        return response

    @admin.action(description="Assign the chosen owner to the selected recommendations", permissions=["change"])
    def assign_owner(self, request, queryset) -> None:
        chosen = request.POST.get("owner") or ""
        owner = eligible_owners(request.user.organisation_id).filter(pk=chosen).first() if chosen.isdigit() else None
        if owner is None:
            self.message_user(
                request, "Choose an owner from your organisation in the box beside the action first.", messages.ERROR
            )
            return
        self._bulk(
            request,
            queryset,
            lambda rec: workflow.assign_owner(rec, by=request.user, owner=owner, reason="Bulk assignment"),
        )

    @admin.action(description="Set the chosen review interval on the selected recommendations", permissions=["change"])
    def set_review_interval(self, request, queryset) -> None:
        raw = (request.POST.get("interval_days") or "").strip()
        days = int(raw) if raw.isdigit() else 0
        if not 1 <= days <= MAX_REVIEW_INTERVAL_DAYS:
            self.message_user(
                request,
                f"Enter a review interval from 1 to {MAX_REVIEW_INTERVAL_DAYS} days beside the action first.",
                messages.ERROR,
            )
            return
        self._bulk(
            request,
            queryset,
            lambda rec: workflow.change_review_interval(rec, by=request.user, days=days, reason="Bulk change"),
        )

    def _bulk(self, request, queryset, change) -> None:
        """Each row through the workflow on its own: one refusal does not stop the others, and is shown."""
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
    list_display = ["recommendation", "author", "created_at", "rag", "review_completed"]
    list_filter = ["rag", "review_completed", "recommendation__finding__inspection"]
    search_fields = ["narrative", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "author"]


class EvidenceActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason (for rejecting)")


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    action_form = EvidenceActionForm
    list_display = ["recommendation", "kind", "category", "description", "added_by", "added_at", "verdict"]
    list_filter = ["verdict", "kind", "category", "recommendation__finding__inspection"]
    search_fields = ["description", "original_filename", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "added_by"]
    exclude = ["file"]  # files are reached only through the permission-checked download view
    actions = ["accept", "reject"]

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
        # Each verdict through the workflow, which refuses (four eyes) anyone who did the work.
        for item in queryset.select_related("recommendation__finding__inspection"):
            try:
                workflow.review_evidence(item, by=request.user, accept=accept, reason=reason)
                self.message_user(request, f"{item}: {'accepted' if accept else 'rejected'}.", messages.SUCCESS)
            except (workflow.WorkflowError, PermissionDenied) as exc:
                self.message_user(request, f"{item}: {exc}", messages.ERROR)


# Issue 16: the plan and measures, read-only here (every write is a workflow step on the staff pages).


@admin.register(PlanAction)
class PlanActionAdmin(ReadOnlyAdmin):
    list_display = ["recommendation", "description", "owner", "due_date", "status"]
    list_filter = ["status", "owner", "recommendation__finding__inspection"]
    search_fields = ["description", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "owner"]
    date_hierarchy = "due_date"


@admin.register(OutcomeMeasure)
class OutcomeMeasureAdmin(ReadOnlyAdmin):
    list_display = ["name", "recommendation", "direction", "target_value", "target_date", "frequency", "supplier"]
    list_filter = ["frequency", "direction", "supplier", "recommendation__finding__inspection"]
    search_fields = ["name", "definition", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "supplier"]


@admin.register(MeasureDataPoint)
class MeasureDataPointAdmin(ReadOnlyAdmin):
    list_display = ["measure", "period", "value", "entered_by", "entered_at", "version"]
    list_filter = ["measure__recommendation__finding__inspection"]
    search_fields = ["measure__name", "note", "correction_reason"]
    list_select_related = ["measure", "entered_by"]


@admin.register(RecommendationEvent)
class RecommendationEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "recommendation", "action", "actor", "old_value", "new_value", "reason"]
    list_filter = ["action", "recommendation__finding__inspection"]
    search_fields = ["reason", "recommendation__finding__reference"]
    list_select_related = ["recommendation__finding", "actor"]
    date_hierarchy = "at"


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = [
        "item",
        "recipient",
        "stage",
        "date",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    ]
    search_fields = [
        "recipient__username",
        "recipient__email",
        "recommendation__finding__reference",
        "plan_action__recommendation__finding__reference",
        "measure__recommendation__finding__reference",
    ]
    list_select_related = [
        "recommendation__finding",
        "recipient",
        "plan_action__recommendation__finding",
        "measure__recommendation__finding",
        "inspection",
    ]
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

    list_filter = [NeedsAttentionFilter, "state", "stage", "review_due", "due"]

    @admin.display(description="About")
    def item(self, obj: Reminder) -> str:
        """The recommendation's reference, or the action's, measure's or inspection's kind and id: no titles."""
        if obj.recommendation_id is not None:
            return obj.recommendation.reference
        if obj.plan_action_id is not None:
            return f"Plan action {obj.plan_action_id} on {obj.plan_action.recommendation.reference}"
        if obj.measure_id is not None:
            return f"Measure {obj.measure_id} on {obj.measure.recommendation.reference}"
        return f"{obj.get_deadline_display()} (inspection {obj.inspection_id})"

    @admin.display(description="Due", ordering="due")
    def date(self, obj: Reminder):
        return obj.review_due or obj.due

    def has_retry_permission(self, request) -> bool:
        return is_operator(request.user) or is_governance_lead(request.user)

    def get_urls(self):
        from django.urls import path

        view = self.admin_site.admin_view(self.health_view)
        return [path("health/", view, name="tracker_reminder_health"), *super().get_urls()]

    def health_view(self, request):
        """Reminder health: the lead's own organisation's ledger, or every organisation's for the operator."""
        from tracker import health

        if not (is_operator(request.user) or is_governance_lead(request.user)):
            raise PermissionDenied
        figures = health.reminder_health(self.get_queryset(request))
        context = {
            **self.admin_site.each_context(request),
            "title": "Reminder health",
            "opts": self.model._meta,
            "lines": figures.lines(show_holder=is_operator(request.user)),
            "sweep_stale": health.sweep_is_stale(figures.now),
        }
        return TemplateResponse(request, "admin/tracker/reminder/health.html", context)

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
    list_display = ["at", "user", "action", "object_repr"]
    list_filter = ["action"]
    search_fields = ["user__username", "object_repr"]
    list_select_related = ["user"]
    date_hierarchy = "at"


def view_on_site(request, content_type_id: int, object_id: str):
    """The admin's "View on site" redirect, confined like every other admin door.

    Django's own (``contenttypes.views.shortcut``) redirects to any object's page by its id, which would
    tell a lead of another organisation that the id exists. Here the object must be one the signed-in
    person may see in the admin (``scoped``); anything else is "not found". Wrapped in
    ``admin.site.admin_view`` in config/urls.py, so signing in comes first, as for every admin page.
    """
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.contenttypes.views import shortcut
    from django.http import Http404

    model = ContentType.objects.filter(pk=content_type_id).first()
    model = model.model_class() if model is not None else None
    if model is None or model not in admin.site._registry or not str(object_id).isascii():
        raise Http404("No such object.")
    model_admin = admin.site._registry[model]
    try:
        visible = model_admin.get_queryset(request).filter(pk=object_id).exists()
    except (ValueError, TypeError, ValidationError):
        visible = False
    if not visible:
        raise Http404("No such object.")
    return shortcut(request, content_type_id, object_id)
