"""Staff pages. Each view parses input, asks permissions and workflow, and renders.

Anything a user may not see is a 404 (it does not exist for them); something they may see but not
do is a 403 page that says why. Every change goes through ``tracker.workflow``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tracker import forms as staff_forms
from tracker import permissions, workflow
from tracker.models import AccessLog, Evidence, Finding, Recommendation
from tracker.permissions import Action

PAGE_SIZE = 50


def staff_page(view: Callable) -> Callable:
    """Sign-in required; a refusal from the permission module becomes a 403 page with its message."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except permissions.NotPermitted as exc:
            return render(request, "tracker/forbidden.html", {"message": str(exc)}, status=403)

    return login_required(never_cache(wrapper))


def _recommendation(request: HttpRequest, pk: int) -> Recommendation:
    return get_object_or_404(permissions.visible_recommendations(request.user).with_related(), pk=pk)


# Reading.


@staff_page
def home(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    soon = today + dt.timedelta(days=settings.REMINDER_LEAD_DAYS)
    mine = permissions.visible_recommendations(request.user).with_related().filter(owner=request.user)
    groups: dict[str, list[Recommendation]] = {"overdue": [], "due_soon": [], "later": [], "finished": []}
    for rec in mine.order_by("next_review_due", "finding__reference"):
        if not rec.is_open:
            groups["finished"].append(rec)
        elif rec.next_review_due < today:
            groups["overdue"].append(rec)
        elif rec.next_review_due <= soon:
            groups["due_soon"].append(rec)
        else:
            groups["later"].append(rec)
    return render(
        request,
        "tracker/home.html",
        {
            "groups": groups,
            "count": sum(len(g) for g in groups.values()),
            "today": today,
            "sees_all": permissions.sees_whole_organisation(request.user),
        },
    )


@staff_page
def recommendation_list(request: HttpRequest) -> HttpResponse:
    if not permissions.sees_whole_organisation(request.user):
        raise permissions.NotPermitted("Only reviewers, governance leads and viewers see all recommendations.")
    visible = permissions.visible_recommendations(request.user).with_related()
    filterset = staff_forms.staff_filter(request.GET or None, visible, request)
    results = filterset.qs if filterset.is_bound and filterset.is_valid() else visible
    sort = request.GET.get("sort", "due")
    if sort not in staff_forms.SORTS:
        sort = "due"
    results = results.order_by(*staff_forms.SORTS[sort])
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    by_status = dict(results.order_by().values_list("status").annotate(n=Count("pk")))
    counts = [(label, by_status.get(value, 0)) for value, label in Recommendation.Status.choices]
    return render(
        request,
        "tracker/recommendation_list.html",
        {
            "filter": filterset,
            "page": page,
            "counts": counts,
            "overdue_count": results.overdue(timezone.localdate()).count(),
            "sort": sort,
            "sorts": staff_forms.SORT_LABELS,
            "today": timezone.localdate(),
        },
    )


@staff_page
def inspection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    inspection = get_object_or_404(permissions.visible_inspections(request.user), pk=pk)
    findings = inspection.findings.select_related("recommendation__owner").order_by("reference")
    visible = set(
        permissions.visible_recommendations(request.user)
        .filter(finding__inspection=inspection)
        .values_list("pk", flat=True)
    )
    by_kind = {value: [] for value, _ in Finding.Kind.choices}
    for finding in findings:
        rec = getattr(finding, "recommendation", None)
        by_kind[finding.kind].append((finding, rec if rec is not None and rec.pk in visible else None))
    return render(
        request,
        "tracker/inspection.html",
        {
            "inspection": inspection,
            "judgements": inspection.judgements.all(),
            "groups": [(label, by_kind[value]) for value, label in Finding.Kind.choices if by_kind[value]],
        },
    )


@staff_page
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    allowed = permissions.allowed_actions(request.user, rec)
    evidence = list(rec.evidence.select_related("added_by", "reviewed_by"))
    is_open = rec.is_open
    reviewing = Action.REVIEW in allowed and rec.status == Recommendation.Status.AWAITING_ASSURANCE
    return render(
        request,
        "tracker/recommendation.html",
        {
            "recommendation": rec,
            "finding": rec.finding,
            "themes": rec.finding.themes.all(),
            "events": rec.events.select_related("actor"),
            "updates": rec.updates.select_related("author"),
            "evidence": evidence,
            "today": timezone.localdate(),
            "can": {
                "update": Action.UPDATE in allowed and is_open,
                "add_evidence": Action.ADD_EVIDENCE in allowed and is_open,
                "submit": Action.SUBMIT in allowed and rec.status == Recommendation.Status.IN_PROGRESS,
                "review_evidence": reviewing,
                "decide": reviewing,
                "reopen": Action.REOPEN in allowed and rec.status == Recommendation.Status.CLOSED,
                "reassign": Action.REASSIGN in allowed and is_open,
                "target_date": Action.CHANGE_TARGET_DATE in allowed and is_open,
            },
            "submit_problem": workflow.submit_problem(rec) if Action.SUBMIT in allowed and is_open else None,
        },
    )


@staff_page
@require_http_methods(["GET", "HEAD"])
def evidence_download(request: HttpRequest, pk: int) -> FileResponse:
    evidence = get_object_or_404(
        permissions.visible_evidence(request.user).select_related("recommendation__finding"),
        pk=pk,
        kind=Evidence.Kind.FILE,
    )
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404("The evidence file is missing from storage.") from None
    AccessLog.objects.create(
        user=request.user,
        action=AccessLog.Action.EVIDENCE_DOWNLOAD,
        object_repr=str(evidence)[:300],
        detail={
            "evidence": evidence.pk,
            "recommendation": evidence.recommendation_id,
            "filename": evidence.original_filename,
        },
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.original_filename or f"evidence-{evidence.pk}",
        content_type=evidence.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# Changing: one page per workflow action, all of the same shape.


@dataclass(frozen=True)
class Step:
    action: Action
    form_class: type[staff_forms.VersionedForm]
    title: str
    button: str
    perform: Callable[[HttpRequest, Recommendation, dict], str]  # does the change, returns the success message
    intro: str = ""
    warning: bool = False


def _workflow_page(request: HttpRequest, pk: int, step: Step, **form_kwargs) -> HttpResponse:
    rec = _recommendation(request, pk)
    permissions.require(request.user, step.action, rec)
    if request.method == "POST":
        form = step.form_class(request.POST, request.FILES, recommendation=rec, **form_kwargs)
        if form.is_valid():
            try:
                message = step.perform(request, rec, form)
            except workflow.StaleRecommendation as exc:
                # Keep what the user typed, but against the version they can now see.
                rec.refresh_from_db()
                data = request.POST.copy()
                data["version"] = rec.version
                form = step.form_class(data, recommendation=rec, **form_kwargs)
                form.is_valid()
                form.add_error(None, str(exc))
            except workflow.WorkflowError as exc:
                form.add_workflow_error(str(exc))
            else:
                messages.success(request, message)
                return redirect(rec)
    else:
        form = step.form_class(recommendation=rec, **form_kwargs)
    return render(request, "tracker/action.html", {"recommendation": rec, "form": form, "step": step})


def _post_update(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.post_update(
        rec,
        by=request.user,
        narrative=data["narrative"],
        rag=data["rag"] or None,
        review_completed=data["review_completed"],
        expected_version=data["version"],
    )
    if not data.get("submit_for_assurance"):
        return "Your update has been saved."
    try:
        # The update bumped the version; rec was refreshed by the workflow, so this is the version just written.
        workflow.submit_for_assurance(rec, by=request.user, expected_version=rec.version)
    except workflow.WorkflowError as exc:
        messages.warning(request, f"Your update has been saved, but it was not submitted for assurance: {exc}")
        return "Your update has been saved."
    return "Your update has been saved and the recommendation submitted for assurance."


def _add_evidence(request, rec, form) -> str:
    data = form.cleaned_data
    checked = form.checked
    workflow.add_evidence(
        rec,
        by=request.user,
        kind=data["kind"],
        category=data["category"],
        description=data["description"],
        upload=checked,
        link=data["link"],
        note=data["note"],
        expected_version=data["version"],
    )
    return "Your evidence has been added."


def _submit(request, rec, form) -> str:
    workflow.submit_for_assurance(rec, by=request.user, expected_version=form.cleaned_data["version"])
    return "Submitted for assurance. An assurance reviewer will check the evidence."


def _decide(request, rec, form) -> str:
    data = form.cleaned_data
    if data["decision"] == form.CLOSE:
        workflow.close(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
        return "The recommendation has been accepted and closed."
    workflow.reject(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
    return "The submission has been rejected and the recommendation is back in progress."


def _reopen(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.reopen(rec, by=request.user, reason=data["reason"], expected_version=data["version"])
    return "The recommendation has been reopened."


def _reassign(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.assign_owner(
        rec, by=request.user, owner=data["owner"], reason=data["reason"], expected_version=data["version"]
    )
    return f"The owner is now {rec.owner or 'nobody'}."


def _change_target_date(request, rec, form) -> str:
    data = form.cleaned_data
    workflow.change_target_date(
        rec, by=request.user, target_date=data["target_date"], reason=data["reason"], expected_version=data["version"]
    )
    return "The target date has been changed."


UPDATE = Step(Action.UPDATE, staff_forms.ProgressUpdateForm, "Post a progress update", "Save update", _post_update)
ADD_EVIDENCE = Step(
    Action.ADD_EVIDENCE,
    staff_forms.EvidenceForm,
    "Add evidence",
    "Add evidence",
    _add_evidence,
    intro="Evidence is a file, a link or a note. Say whether it shows an output (something delivered) "
    "or an outcome (a result for children).",
)
SUBMIT = Step(
    Action.SUBMIT,
    staff_forms.SubmitForm,
    "Submit for assurance",
    "Submit for assurance",
    _submit,
    intro="An assurance reviewer who does not own this recommendation will check its evidence and decide "
    "whether to close it. You cannot post updates that change its status while it awaits assurance.",
)
DECIDE = Step(
    Action.REVIEW,
    staff_forms.AssuranceDecisionForm,
    "Assurance decision",
    "Record decision",
    _decide,
    intro="Every piece of evidence needs a verdict before the recommendation can be closed.",
)
REOPEN = Step(Action.REOPEN, staff_forms.ReopenForm, "Reopen recommendation", "Reopen", _reopen, warning=True)
REASSIGN = Step(Action.REASSIGN, staff_forms.ReassignForm, "Change owner", "Change owner", _reassign)
TARGET_DATE = Step(
    Action.CHANGE_TARGET_DATE,
    staff_forms.TargetDateForm,
    "Change target date",
    "Change target date",
    _change_target_date,
)


@staff_page
def post_update(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    can_submit = permissions.can(request.user, Action.SUBMIT, rec) and rec.status in (
        Recommendation.Status.NOT_STARTED,
        Recommendation.Status.IN_PROGRESS,
    )
    return _workflow_page(request, pk, UPDATE, can_submit=can_submit)


@staff_page
def add_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    # Reading FILES parses the body; tracker.upload_handlers then knows each file name as it was sent.
    sent_names = getattr(request, "raw_upload_names", []) if request.FILES is not None else []
    return _workflow_page(request, pk, ADD_EVIDENCE, raw_upload_names=sent_names)


@staff_page
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, SUBMIT)


@staff_page
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, DECIDE)


@staff_page
def reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, REOPEN)


@staff_page
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, REASSIGN)


@staff_page
def change_target_date(request: HttpRequest, pk: int) -> HttpResponse:
    return _workflow_page(request, pk, TARGET_DATE)


@staff_page
def review_evidence(request: HttpRequest, pk: int, evidence_pk: int) -> HttpResponse:
    rec = _recommendation(request, pk)
    # Only evidence on this recommendation: a forged id from elsewhere is simply not found.
    item = get_object_or_404(permissions.visible_evidence(request.user).filter(recommendation=rec), pk=evidence_pk)
    permissions.require(request.user, Action.REVIEW, rec)
    form = staff_forms.EvidenceReviewForm(request.POST or None, recommendation=rec)
    if request.method == "POST" and form.is_valid():
        accept = form.cleaned_data["decision"] == form.ACCEPT
        try:
            workflow.review_evidence(
                item,
                by=request.user,
                accept=accept,
                reason=form.cleaned_data["reason"],
                expected_version=form.cleaned_data["version"],
            )
        except workflow.WorkflowError as exc:
            form.add_workflow_error(str(exc))
        else:
            messages.success(
                request, "The evidence has been accepted." if accept else "The evidence has been rejected."
            )
            return redirect(rec)
    return render(request, "tracker/review_evidence.html", {"recommendation": rec, "item": item, "form": form})
