"""Imports run by the worker: the request stores the file privately and queues a job; its page shows progress.

``start`` (the admin's import page) checks the role and the size, keeps the upload in ``ImportStorage``
and queues ``tracker.tasks.run_import`` by id once the request commits. ``run`` (the worker) claims the
job with a conditional UPDATE, calls ``tracker.imports.import_recommendations`` with the job as its
``Progress``, and deletes the file whatever the outcome. The import is still one transaction: the job is
marked done inside it, so "done" and the rows commit together, and a failure leaves nothing but the
job's list of problems.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from tracker import imports, permissions
from tracker.models import ImportJob, User
from tracker.storage import ImportStorage

logger = logging.getLogger(__name__)

State = ImportJob.State
WORKING = (State.CHECKING, State.SAVING)


class Superseded(Exception):
    """The job was given up (shown as failed) while this worker still ran it: its writes roll back."""


def visible_jobs(user: User) -> QuerySet[ImportJob]:
    """A job is seen only by the lead who started it, while in the same organisation."""
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return ImportJob.objects.none()
    return ImportJob.objects.filter(user=user, organisation_id=user.organisation_id)


def _stale_after() -> dt.timedelta:
    # As for export jobs: past twice the task's hard limit, its worker (or its lost message) is gone.
    return dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT * 2)


def is_stale(job: ImportJob, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    if job.state == State.PENDING:
        return job.created_at < now - _stale_after()
    if job.state in WORKING:
        return (job.started_at or job.created_at) < now - _stale_after()
    return False


def give_up(job: ImportJob) -> None:
    """A stale job is failed and its file deleted; a worker still holding it then rolls back."""
    if ImportJob.objects.filter(pk=job.pk, state__in=[State.PENDING, *WORKING]).update(
        state=State.FAILED, error="It stopped before it finished. Nothing was imported.", finished_at=timezone.now()
    ):
        _delete_upload(job)
    job.refresh_from_db()


# Asking (the request).


def start(user: User, upload: UploadedFile, *, dry_run: bool) -> ImportJob:
    """Keep the file privately and queue its import; ``imports.ImportFailed`` if it is too large to try."""
    if not permissions.may_create_recommendations(user, user.organisation_id):
        raise permissions.NotPermitted("Only a governance lead can import recommendations.")
    if upload.size is not None and upload.size > imports.MAX_BYTES:
        message = f"the file is larger than {imports.MAX_BYTES // (1024 * 1024)} MB."
        raise imports.ImportFailed([imports.Problem(None, "", message)])
    with transaction.atomic():
        job = ImportJob(user=user, organisation_id=user.organisation_id, dry_run=dry_run)
        job.filename = (upload.name or "upload")[:200]
        # Stored under the job's id, never the uploader's file name.
        job.upload.save(job.pk.hex, upload, save=False)
        try:
            job.save()
        except BaseException:
            ImportStorage().delete(job.upload.name)
            raise
        job_id = str(job.pk)
        transaction.on_commit(lambda: _enqueue(job_id))
    return job


def _enqueue(job_id: str) -> None:
    from tracker.tasks import run_import

    run_import.delay(job_id)


# Running (the worker).


class JobProgress(imports.Progress):
    def __init__(self, job: ImportJob) -> None:
        self.job = job

    def _update(self, **fields) -> int:
        return ImportJob.objects.filter(pk=self.job.pk, state__in=WORKING).update(**fields)

    def read(self, total: int) -> None:
        self._update(total=total)

    def checked(self, done: int) -> None:
        self._update(done=done)

    def saving(self) -> None:
        self._update(state=State.SAVING)

    def saved(self, report: imports.ImportReport) -> None:
        # In the import's transaction: done commits with the rows, or neither does.
        if not ImportJob.objects.filter(pk=self.job.pk, state=State.SAVING).update(**_done(report)):
            raise Superseded(str(self.job.pk))


def _done(report: imports.ImportReport) -> dict:
    return {
        "state": State.DONE,
        "inspections": report.inspections,
        "rows": report.rows,
        "finished_at": timezone.now(),
    }


def _fail(job: ImportJob, **fields) -> None:
    ImportJob.objects.filter(pk=job.pk, state__in=WORKING).update(
        state=State.FAILED, finished_at=timezone.now(), **fields
    )


def run(job_id: str) -> str:
    """Check (and unless a dry run, import) the job's file: "done", "failed", or "skipped" when another
    delivery of the task holds the job or it has finished."""
    now = timezone.now()
    claimable = Q(state=State.PENDING) | Q(state__in=WORKING, started_at__lt=now - _stale_after())
    if not ImportJob.objects.filter(claimable, pk=job_id).update(state=State.CHECKING, started_at=now, done=0):
        return "skipped"
    job = ImportJob.objects.get(pk=job_id)
    try:
        try:
            with job.upload.open("rb") as handle:
                content = handle.read(imports.MAX_BYTES + 1)
        except (FileNotFoundError, ValueError):
            _fail(job, error="The uploaded file is missing from storage; upload it again.")
            return "failed"
        # Fresh from the database: roles may have changed while the job waited.
        user = User.objects.get(pk=job.user_id)
        if user.organisation_id != job.organisation_id:
            raise permissions.NotPermitted("You are no longer in the organisation this file was imported for.")
        report = imports.import_recommendations(
            content, by=user, filename=job.filename, dry_run=job.dry_run, progress=JobProgress(job)
        )
    except imports.ImportFailed as exc:
        problems = [str(problem) for problem in exc.problems]
        _fail(job, problems=problems[: ImportJob.MAX_PROBLEMS], problem_count=len(problems))
        return "failed"
    except permissions.NotPermitted as exc:
        _fail(job, error=str(exc)[:300])
        return "failed"
    except Superseded:
        return "failed"
    except Exception:
        _fail(
            job,
            error="Something went wrong while importing. Nothing was imported. Try again; if it fails "
            "again, tell the service desk.",
        )
        logger.exception("Import job %s failed", job.pk)
        raise
    finally:
        _delete_upload(job)
    if job.dry_run:
        ImportJob.objects.filter(pk=job.pk, state__in=WORKING).update(**_done(report))
    return "done"


def _delete_upload(job: ImportJob) -> None:
    if job.upload.name:
        ImportStorage().delete(job.upload.name)
        ImportJob.objects.filter(pk=job.pk).update(upload="")
