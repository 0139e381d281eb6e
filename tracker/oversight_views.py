"""Oversight pages: the dashboard, the board pack, exports, the import page and calendar feeds.

Thin views: each parses input, asks ``tracker.permissions``, calls one domain module and responds.
Dashboard, board pack and exports are for people who see the whole organisation (governance leads,
reviewers, viewers); another organisation's inspection is not found. The calendar feed is the one
page without a session: its unguessable token is the credential.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tracker import boardpack, calendar_feed, dashboard, exports, import_jobs, imports, jobs, permissions, sources
from tracker.forms import GovUKDateField
from tracker.models import AccessLog, ExportJob, ImportJob, Inspection
from tracker.views import staff_page


def _require_oversight(request: HttpRequest) -> None:
    if not permissions.sees_whole_organisation(request.user):
        raise permissions.NotPermitted(
            "The dashboard, board packs and exports are for governance leads, assurance reviewers and viewers."
        )


def _inspection(request: HttpRequest, pk: int | str) -> Inspection:
    return get_object_or_404(permissions.visible_inspections(request.user), pk=pk)


@staff_page
def dashboard_page(request: HttpRequest) -> HttpResponse:
    _require_oversight(request)
    chosen = request.GET.get("inspection") or ""
    # isdigit() alone accepts "²" and other digits int() refuses; a number beyond 64 bits names no row.
    if chosen and not (chosen.isascii() and chosen.isdigit() and int(chosen) < 2**63):
        raise Http404("No such inspection.")
    inspection = _inspection(request, chosen) if chosen else None
    board = dashboard.build(request.user, inspection=inspection)
    strengths = sources.strengths_to_sustain([inspection] if inspection else board.inspections)
    return render(request, "tracker/oversight/dashboard.html", {"board": board, "strengths": strengths})


class SinceForm(forms.Form):
    since = GovUKDateField(
        error_name="The date",
        label="Show what changed since",
        help_text=f"For example, the date of the last board meeting: 31 3 2026. Leave it blank for the last {boardpack.DEFAULT_SINCE_DAYS} days.",
        required=False,
    )


def _since(request: HttpRequest) -> tuple[dt.date, SinceForm]:
    asked = any(key == "since" or key.startswith("since-") for key in request.GET)
    form = SinceForm(request.GET if asked else None)
    since = boardpack.default_since()
    if form.is_bound and form.is_valid() and form.cleaned_data["since"]:
        since = form.cleaned_data["since"]
    return since, form


def _pack(request: HttpRequest, pk: int) -> tuple[boardpack.BoardPack, SinceForm]:
    _require_oversight(request)
    inspection = _inspection(request, pk)
    since, form = _since(request)
    return boardpack.build(request.user, inspection, since=since), form


# The page lists the first of each list of the pack; the PDF, made by the worker, lists them all.
PACK_PAGE_ROWS = 100


@staff_page
def board_pack(request: HttpRequest, pk: int) -> HttpResponse:
    pack, form = _pack(request, pk)
    return render(request, "tracker/oversight/board_pack.html", {"pack": pack, "form": form, "shown": PACK_PAGE_ROWS})


@staff_page
@require_http_methods(["GET", "HEAD"])
def board_pack_latest(request: HttpRequest) -> HttpResponse:
    """The navigation's "Board pack": the pack of the most recently published tracked inspection."""
    _require_oversight(request)
    latest = (
        permissions.visible_inspections(request.user)
        .filter(tracked=True, findings__recommendation__isnull=False)
        .order_by(F("published").desc(nulls_last=True), "-pk")
        .first()
    )
    if latest is None:
        raise Http404("No inspection has recommendations yet, so there is no board pack.")
    return redirect("tracker:board-pack", pk=latest.pk)


@staff_page
@require_http_methods(["GET", "HEAD"])
def board_pack_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """Made by the worker: this asks for it and shows its progress, or its file if already made."""
    _require_oversight(request)
    inspection = _inspection(request, pk)
    since, _form = _since(request)
    return _to_job(jobs.start_board_pack(request.user, inspection, since))


def _to_job(job: ExportJob) -> HttpResponse:
    if job.state == ExportJob.State.READY:
        return redirect("tracker:export-download", pk=job.pk)
    return redirect("tracker:export-job", pk=job.pk)


def _invalid(exc: jobs.InvalidFilter) -> HttpResponse:
    return HttpResponseBadRequest(f"The filter is not valid, so nothing was exported. {exc}")


@staff_page
@require_http_methods(["GET", "HEAD"])
def export_csv(request: HttpRequest) -> HttpResponse:
    _require_oversight(request)
    # The list page's own FilterSet and query string, so "download" gives exactly what is on screen.
    try:
        results = jobs.selected_recommendations(request.user, request.GET)
    except jobs.InvalidFilter as exc:
        return _invalid(exc)
    total = results.count()
    if total > settings.CSV_STREAM_MAX_ROWS:
        # Too long for a request: the worker makes the file, logged when it is downloaded.
        return _to_job(jobs.start_list_export(request.user, ExportJob.Kind.CSV, request.GET))
    AccessLog.objects.create(
        user=request.user,
        action=AccessLog.Action.EXPORT,
        object_repr=f"{total} recommendations as CSV",
        detail={"format": "csv", "query": request.GET.urlencode(), "rows": total},
    )
    # Streamed: rows are read and written a chunk at a time, so memory stays flat at any size.
    response = StreamingHttpResponse(exports.csv_chunks(exports.rows(results)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="recommendations-{timezone.localdate():%Y-%m-%d}.csv"'
    return response


@staff_page
@require_http_methods(["GET", "HEAD"])
def export_xlsx(request: HttpRequest) -> HttpResponse:
    """Made by the worker (a large workbook outlasts a request): asks for it, then its progress or file."""
    _require_oversight(request)
    try:
        job = jobs.start_list_export(request.user, ExportJob.Kind.XLSX, request.GET)
    except jobs.InvalidFilter as exc:
        return _invalid(exc)
    return _to_job(job)


JOB_REFRESH_SECONDS = 3


@staff_page
@require_http_methods(["GET", "HEAD"])
def export_job(request: HttpRequest, pk) -> HttpResponse:
    """A job's progress; the page reloads itself until the file is ready or the job has failed."""
    _require_oversight(request)
    job = get_object_or_404(jobs.visible_jobs(request.user).select_related("inspection"), pk=pk)
    stale = jobs.is_stale(job)
    if job.kind != ExportJob.Kind.BOARD_PACK_PDF:
        asked = reverse("tracker:export-xlsx" if job.kind == ExportJob.Kind.XLSX else "tracker:export-csv")
        again = f"{asked}?{job.query}" if job.query else asked
        back = f"{reverse('tracker:recommendations')}?{job.query}" if job.query else reverse("tracker:recommendations")
    else:
        since = QueryDict(job.query).get("since", "")
        again = f"{reverse('tracker:board-pack-pdf', args=[job.inspection_id])}?since={since}"
        back = f"{reverse('tracker:board-pack', args=[job.inspection_id])}?since={since}"
    context = {
        "job": job,
        "stale": stale,
        "refresh": None if job.finished or stale else JOB_REFRESH_SECONDS,
        "again": again,
        "back": back,
    }
    return render(request, "tracker/oversight/export_job.html", context)


@staff_page
@require_http_methods(["GET", "HEAD"])
def export_download(request: HttpRequest, pk) -> FileResponse | HttpResponse:
    _require_oversight(request)
    job = get_object_or_404(jobs.visible_jobs(request.user).select_related("inspection"), pk=pk)
    if job.state != ExportJob.State.READY:
        return redirect("tracker:export-job", pk=job.pk)
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage; ask for it again.") from None
    # Logged at each download: the moment the data leaves, and once per copy taken.
    AccessLog.objects.create(user=request.user, action=AccessLog.Action.EXPORT, **jobs.download_log(job))
    kinds = {
        ExportJob.Kind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ExportJob.Kind.CSV: "text/csv; charset=utf-8",
    }
    response = FileResponse(
        handle, as_attachment=True, filename=job.filename, content_type=kinds.get(job.kind, "application/pdf")
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# Calendar feeds.


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def calendar_settings(request: HttpRequest) -> HttpResponse:
    if not permissions.roles(request.user) or request.user.organisation_id is None:
        raise permissions.NotPermitted("Your account has no role in the tracker, so it has no calendar.")
    new_url = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            calendar_feed.revoke_tokens(request.user)
            messages.success(request, "Your calendar link has been turned off. Calendars using it stop updating.")
            return redirect("tracker:calendar")
        # Shown once, in this response only: the token is not stored anywhere we could show it again.
        new_url = calendar_feed.feed_url(calendar_feed.issue_token(request.user))
    return render(
        request,
        "tracker/oversight/calendar.html",
        {"token": calendar_feed.active_token(request.user), "new_url": new_url},
    )


@never_cache
@require_http_methods(["GET", "HEAD"])
def calendar_ics(request: HttpRequest, token: str) -> HttpResponse:
    user = calendar_feed.user_for_token(token)
    if user is None:
        raise Http404("No such calendar.")
    response = HttpResponse(calendar_feed.build_calendar(user), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="recommendations.ics"'
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


# The admin's import page (registered in tracker.admin on the inspection list).


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV or Excel file", help_text="In the columns of an export; one row per finding.")
    dry_run = forms.BooleanField(label="Check only: change nothing", required=False)


def admin_import(request: HttpRequest, model_admin) -> HttpResponse:
    """Keeps the file and hands it to the worker (10,000 rows take seconds); the job's page shows the rest."""
    if not permissions.may_create_recommendations(request.user, request.user.organisation_id):
        raise PermissionDenied("Only a governance lead can import recommendations.")
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list[imports.Problem] = []
    if request.method == "POST" and form.is_valid():
        try:
            job = import_jobs.start(request.user, form.cleaned_data["file"], dry_run=form.cleaned_data["dry_run"])
        except imports.ImportFailed as exc:
            problems = exc.problems
        else:
            return redirect("tracker:import-job", pk=job.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Import recommendations",
        "form": form,
        "problems": problems,
        "columns": exports.COLUMNS,
        "required": set(imports.REQUIRED),
    }
    return render(request, "admin/tracker/inspection/import.html", context)


@staff_page
@require_http_methods(["GET", "HEAD"])
def import_job(request: HttpRequest, pk) -> HttpResponse:
    """An import's progress; the page reloads itself until the import is done or has failed."""
    if not permissions.may_create_recommendations(request.user, request.user.organisation_id):
        raise permissions.NotPermitted("Only a governance lead can import recommendations.")
    job = get_object_or_404(import_jobs.visible_jobs(request.user), pk=pk)
    if import_jobs.is_stale(job):
        import_jobs.give_up(job)
    inspections = []
    if job.state == ImportJob.State.DONE and not job.dry_run:
        inspections = permissions.visible_inspections(request.user).filter(slug__in=job.inspections).order_by("slug")
    context = {
        "job": job,
        "refresh": None if job.finished else JOB_REFRESH_SECONDS,
        "inspections": inspections,
        "more_problems": max(0, job.problem_count - len(job.problems)),
    }
    return render(request, "tracker/oversight/import_job.html", context)
