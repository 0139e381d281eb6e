"""Files too slow to make in a request (Excel exports, large CSV exports, board-pack PDFs), made by the
worker instead.

A request asks for a file (``start_list_export``, ``start_board_pack``): it gets the job of its key (user, kind,
normalised query, data version), or a new one queued when the request's transaction commits. The task
(``tracker.tasks.build_export``) calls ``run``, which claims the job with a conditional UPDATE, writes
progress as it goes and stores the file privately (``ExportStorage``). The status page reads the row;
the download view serves the file and writes the access log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
from types import SimpleNamespace
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from tracker import boardpack, exports, permissions
from tracker.filters import RecommendationFilter
from tracker.forms import SORTS
from tracker.models import (
    Evidence,
    ExportJob,
    Finding,
    Inspection,
    Judgement,
    Organisation,
    ProgressUpdate,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Source,
    Theme,
)
from tracker.storage import ExportStorage

if TYPE_CHECKING:
    from tracker.models import User

logger = logging.getLogger(__name__)

State = ExportJob.State
Kind = ExportJob.Kind
PROGRESS_EVERY = 1000  # rows between progress writes
# Models whose edits (through the workflow, the admin or an import) can change what a file shows. Each
# has a field history with an indexed date, so "the latest edit" is one index lookup per model.
EDITED = (
    Recommendation,
    Finding,
    Quotation,
    Source,
    Inspection,
    Judgement,
    Theme,
    ProgressUpdate,
    Evidence,
    Organisation,
)


class InvalidFilter(ValueError):
    pass


def _stale_after() -> dt.timedelta:
    # Past the task's hard limit, a running job's worker is gone; a pending one twice that was lost
    # with its message (a broker restart). Either is shown as failed, and asking again starts anew.
    return dt.timedelta(seconds=settings.EXPORT_TASK_TIME_LIMIT * 2)


def is_stale(job: ExportJob, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    if job.state == State.PENDING:
        return job.created_at < now - _stale_after()
    if job.state == State.RUNNING:
        return (job.started_at or job.created_at) < now - _stale_after()
    return False


def visible_jobs(user: User) -> QuerySet[ExportJob]:
    """A job is seen only by the user who asked for it, while in the same organisation."""
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return ExportJob.objects.none()
    return ExportJob.objects.filter(user=user, organisation_id=user.organisation_id)


# What a file shows, from the request or again in the worker.


def normalise_query(params: QueryDict) -> str:
    """The filter and sort of a list query, in one spelling: known keys, sorted, without blanks."""
    query = QueryDict(mutable=True)
    for key in sorted(set(params) & {*RecommendationFilter.base_filters, "sort"}):
        values = sorted({value for value in params.getlist(key) if value.strip()})
        if key == "sort":
            values = [value for value in values[:1] if value in SORTS and value != "due"]
        if values:
            query.setlist(key, values)
    return query.urlencode()


def selected_recommendations(user: User, query: str | QueryDict) -> QuerySet[Recommendation]:
    """The list page's filter and sort over what the user sees; ``InvalidFilter`` if it does not validate."""
    params = QueryDict(query) if isinstance(query, str) else query
    visible = permissions.visible_recommendations(user)
    # The FilterSet reads only request.user; the worker has no request, so it gets the user alone.
    filterset = RecommendationFilter(params or None, queryset=visible, request=SimpleNamespace(user=user))
    if filterset.is_bound and not filterset.is_valid():
        raise InvalidFilter("; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items()))
    results = filterset.qs if filterset.is_bound else visible
    return results.order_by(*SORTS.get(params.get("sort", "due"), SORTS["due"]))


def data_version(scope: QuerySet[Recommendation]) -> str:
    """Changes whenever what a file of ``scope`` shows may have changed: the rows in it, the latest edit
    of anything it prints, the latest workflow event, and the London date (overdue counts, "today")."""
    rows = scope.order_by().aggregate(n=Count("pk"), latest=Max("updated_at"))
    parts = [str(timezone.localdate()), str(rows["n"]), str(rows["latest"])]
    parts += [str(model.history.aggregate(at=Max("history_date"))["at"]) for model in EDITED]
    parts.append(str(RecommendationEvent.objects.aggregate(last=Max("pk"))["last"]))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _key(user: User, kind: str, query: str, version: str) -> str:
    return hashlib.sha256(f"{user.pk}\n{kind}\n{query}\n{version}".encode()).hexdigest()


# Asking.


def start_list_export(user: User, kind: str, params: QueryDict) -> ExportJob:
    """The Excel or CSV export of the list page's query: ``InvalidFilter`` if the filter does not validate."""
    query = normalise_query(params)
    scope = selected_recommendations(user, query)
    return _start(user, kind, query, scope)


def start_board_pack(user: User, inspection: Inspection, since: dt.date) -> ExportJob:
    query = QueryDict(mutable=True)
    query.update({"inspection": str(inspection.pk), "since": since.isoformat()})
    scope = permissions.visible_recommendations(user).filter(finding__inspection=inspection)
    return _start(user, Kind.BOARD_PACK_PDF, query.urlencode(), scope, inspection=inspection)


def _start(
    user: User, kind: str, query: str, scope: QuerySet[Recommendation], inspection: Inspection | None = None
) -> ExportJob:
    key = _key(user, kind, query, data_version(scope))
    with transaction.atomic():
        job = ExportJob.objects.filter(key=key).exclude(state=State.FAILED).first()
        if job is not None and is_stale(job):
            _fail(job.pk, "It stopped before it finished.", states=(State.PENDING, State.RUNNING))
            job = None
        if job is not None:
            return job
        try:
            with transaction.atomic():
                job = ExportJob.objects.create(
                    user=user,
                    organisation_id=user.organisation_id,
                    kind=kind,
                    query=query,
                    inspection=inspection,
                    key=key,
                )
        except IntegrityError:
            # Another request for the same file got there first: use its job.
            return ExportJob.objects.exclude(state=State.FAILED).get(key=key)
        job_id = str(job.pk)
        transaction.on_commit(lambda: _enqueue(job_id))
    return job


def _enqueue(job_id: str) -> None:
    from tracker.tasks import build_export

    build_export.delay(job_id)


# Making (the worker).


def _fail(job_id, message: str, states=(State.RUNNING,)) -> None:
    ExportJob.objects.filter(pk=job_id, state__in=states).update(
        state=State.FAILED, error=message[:300], finished_at=timezone.now()
    )


def run(job_id: str) -> str:
    """Make the job's file: "ready", or "failed"/"skipped" (a second delivery of a claimed job does nothing)."""
    now = timezone.now()
    claimable = Q(state=State.PENDING) | Q(state=State.RUNNING, started_at__lt=now - _stale_after())
    if not ExportJob.objects.filter(claimable, pk=job_id).update(state=State.RUNNING, started_at=now, done=0):
        return "skipped"
    job = ExportJob.objects.select_related("user", "inspection").get(pk=job_id)
    handle, path = tempfile.mkstemp(prefix="export-")
    os.close(handle)
    try:
        _check_still_allowed(job)
        name = _MAKERS[job.kind](job, path)
        with open(path, "rb") as made:
            stored = ExportStorage().save(job.pk.hex, File(made))
    except Exception as exc:
        _fail(job.pk, _message(exc))
        logger.exception("Export job %s failed", job.pk)
        raise
    finally:
        os.unlink(path)
    finished = ExportJob.objects.filter(pk=job.pk, state=State.RUNNING).update(
        state=State.READY, file=stored, filename=name, finished_at=timezone.now()
    )
    if not finished:  # marked failed as stale meanwhile: keep nothing
        ExportStorage().delete(stored)
        return "failed"
    _drop_superseded(job)
    return "ready"


class NotAllowed(Exception):
    pass


def _check_still_allowed(job: ExportJob) -> None:
    # Asked by someone who may; checked again here, since roles can change while a job waits.
    user = job.user
    if not permissions.sees_whole_organisation(user) or user.organisation_id != job.organisation_id:
        raise NotAllowed("You no longer have a role that may make this file.")


def _message(exc: Exception) -> str:
    if isinstance(exc, NotAllowed | InvalidFilter):
        return str(exc)
    return "Something went wrong while making the file. Try again; if it fails again, tell the service desk."


def _progress(job: ExportJob, **fields) -> None:
    ExportJob.objects.filter(pk=job.pk, state=State.RUNNING).update(**fields)


def _make_list_export(job: ExportJob, path: str) -> str:
    results = selected_recommendations(job.user, job.query)
    _progress(job, total=results.count())

    def written(count: int) -> None:
        if count % PROGRESS_EVERY == 0:
            _progress(job, done=count)

    write = exports.write_xlsx if job.kind == Kind.XLSX else exports.write_csv
    count = write(exports.rows(results), path, on_row=written)
    _progress(job, done=count, total=count)
    return f"recommendations-{timezone.localdate():%Y-%m-%d}.{job.kind}"


def _make_board_pack(job: ExportJob, path: str) -> str:
    if job.inspection is None or job.inspection.organisation_id != job.organisation_id:
        raise NotAllowed("The inspection is no longer in your organisation.")
    since = dt.date.fromisoformat(QueryDict(job.query)["since"])
    pack = boardpack.build(job.user, job.inspection, since=since)
    _progress(job, total=pack.total)
    with open(path, "wb") as out:
        out.write(boardpack.render_pdf(pack))
    _progress(job, done=pack.total)
    return f"board-pack-{job.inspection.slug}-{pack.today:%Y-%m-%d}.pdf"


_MAKERS = {Kind.XLSX: _make_list_export, Kind.CSV: _make_list_export, Kind.BOARD_PACK_PDF: _make_board_pack}
assert set(_MAKERS) == set(Kind), "every kind of file needs its maker"


def _drop_superseded(job: ExportJob) -> None:
    """Files of the same request made from older data are never served again: delete them."""
    older = ExportJob.objects.filter(
        user_id=job.user_id, kind=job.kind, query=job.query, state__in=[State.READY, State.FAILED]
    ).exclude(pk=job.pk)
    for old in older.filter(created_at__lte=job.created_at):
        if old.file:
            ExportStorage().delete(old.file.name)
        old.delete()


# Taking.


def download_log(job: ExportJob) -> dict:
    """What the access log records for one download of the job's file."""
    query = QueryDict(job.query)
    if job.kind == Kind.BOARD_PACK_PDF:
        detail = {"format": "pdf", "inspection": job.inspection_id, "since": query.get("since"), "rows": job.total}
        return {"object_repr": f"Board pack PDF: {job.inspection}"[:300], "detail": {**detail, "job": str(job.pk)}}
    return {
        "object_repr": f"{job.total} recommendations as {job.kind.upper()}",
        "detail": {"format": job.kind, "query": job.query, "rows": job.total, "job": str(job.pk)},
    }
