"""Thin Celery tasks. They take ids (or nothing), never model instances, and call one domain function.

Waits between delivery attempts live in the reminder ledger, not in Celery countdowns: a task that
finds nothing due simply returns, and the next tick picks the row up when its time comes.
"""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from tracker import import_jobs, jobs, reminders, schedule


def _deadline() -> float:
    # Start no new batch in the second half of the soft limit, so the last one finishes in time.
    return time.monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2


@shared_task(name="tracker.tasks.run_review_sweep", autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def run_review_sweep() -> dict[str, int]:
    """The daily sweep (Celery beat): add what is due to the ledger, record the day, then deliver it."""
    added = schedule.sweep()
    report = reminders.deliver(deadline=_deadline())
    return {"planned": added, **report.as_dict()}


@shared_task(name="tracker.tasks.deliver_due_reminders")
def deliver_due_reminders() -> dict[str, int]:
    """Deliver ledger rows whose next attempt is due: notifications chosen "within minutes" (everything
    that came for one person since the last tick goes in one email), retries, expired leases, 'retry now'.

    First, if beat missed today's sweep (down at its time, or the queued sweep lost), run it here.
    """
    added = schedule.catch_up()
    return {"planned": added, **reminders.deliver(deadline=_deadline()).as_dict()}


@shared_task(
    name="tracker.tasks.build_export",
    time_limit=settings.EXPORT_TASK_TIME_LIMIT,
    soft_time_limit=settings.EXPORT_TASK_TIME_LIMIT - max(1, settings.EXPORT_TASK_TIME_LIMIT // 10),
)
def build_export(job_id: str) -> str:
    """Make one export job's file (an Excel export, a long CSV export or a board-pack PDF), under its own
    time limit (EXPORT_TASK_TIME_LIMIT). Not retried: a failure is recorded on the job, whose page offers
    to try again."""
    return jobs.run(job_id)


@shared_task(name="tracker.tasks.run_import")
def run_import(job_id: str) -> str:
    """Check, and unless a dry run import, one uploaded file. Not retried: a failure is recorded on the
    job, whose page lists the problems or offers to try again."""
    return import_jobs.run(job_id)
