"""The reminder schedule: beat's entries, the record of each day's sweep, and the catch-up.

Beat runs the daily sweep from its crontab (07:00 Europe/London unless the operator moves it). Beat
can miss it: django-celery-beat's DatabaseScheduler loads a crontab entry only within about two hours
of its time, so a beat that is down at 07:00 and back at 10:00 never runs that day's sweep, and a
sweep queued in a Redis that then loses its data is never planned again either. So every sweep
records its London date (``SweepRun``), and the every-minute delivery tick runs the day's sweep itself
once its scheduled time has passed with no record (``catch_up``). Planning is idempotent (the ledger's
unique constraint), so a catch-up racing a late beat sweep, or two ticks at once, adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery.utils.time import remaining
from django.db import transaction
from django.utils import timezone

from tracker import reminders
from tracker.models import SweepRun

logger = logging.getLogger(__name__)

# Beat's entries, by name (set up by ``manage.py setup_schedule``, then the operator's to edit).
SWEEP = "Review reminders: daily sweep"
DELIVERY = "Review reminders: deliver retries"
START_UP = "Review reminders: sweep at start-up"
SWEEP_TASK = "tracker.tasks.run_review_sweep"
DELIVERY_TASK = "tracker.tasks.deliver_due_reminders"

# How long after its scheduled time the day's sweep may take to be recorded before the tick runs it:
# long enough for beat's own sweep to plan, so a healthy day never has two.
SWEEP_GRACE = dt.timedelta(minutes=5)


def sweep(today: dt.date | None = None, *, caught_up: bool = False) -> int:
    """Plan the reminders due ``today`` (the London date) and record the day's sweep; returns rows added."""
    today = today or timezone.localdate()
    started = timezone.now()
    with transaction.atomic():
        added = reminders.plan(today)
        # ON CONFLICT (day) DO UPDATE on SQLite and PostgreSQL alike: a later sweep of the same day
        # only moves finished_at on.
        SweepRun.objects.bulk_create(
            [SweepRun(day=today, started_at=started, finished_at=timezone.now(), planned=added, caught_up=caught_up)],
            update_conflicts=True,
            unique_fields=["day"],
            update_fields=["finished_at"],
        )
    return added


def last_sweep() -> SweepRun | None:
    return SweepRun.objects.order_by("-finished_at").first()


def scheduled_today(now: dt.datetime | None = None) -> dt.datetime | None:
    """When the daily sweep is first due on today's London date, by its crontab as the operator left
    it (time, days and zone); None if it is disabled, not a crontab, or not due today at all."""
    from django_celery_beat.models import PeriodicTask

    now = now or timezone.now()
    task = (
        PeriodicTask.objects.filter(name=SWEEP, enabled=True, crontab__isnull=False).select_related("crontab").first()
    )
    if task is None:
        return None
    schedule = task.crontab.schedule  # celery's crontab, in the entry's own timezone
    midnight = dt.datetime.combine(timezone.localdate(now), dt.time.min, tzinfo=timezone.get_current_timezone())
    # The crontab's first run after the last second of yesterday: celery matches the fields in the
    # crontab's own zone and measures the time from ``now`` in UTC, so a DST change is no trouble.
    start, delta, _ = schedule.remaining_delta(midnight - dt.timedelta(seconds=1))
    first = now + remaining(start, delta, now=now)
    return first if timezone.localdate(first) == timezone.localdate(now) else None


def sweep_overdue(now: dt.datetime | None = None) -> bool:
    """Has today's scheduled sweep time passed (by ``SWEEP_GRACE``) with no sweep recorded for today?"""
    now = now or timezone.now()
    if SweepRun.objects.filter(day=timezone.localdate(now)).exists():
        return False
    due = scheduled_today(now)
    return due is not None and now >= due + SWEEP_GRACE


def catch_up(now: dt.datetime | None = None) -> int:
    """Run today's sweep if beat has missed it; returns the reminders it added (0 if none was missed)."""
    from django_celery_beat.models import PeriodicTask

    now = now or timezone.now()
    if not sweep_overdue(now):
        return 0
    added = sweep(timezone.localdate(now), caught_up=True)
    # Tell beat the day's run has happened. Otherwise, when tomorrow's loading window opens (two hours
    # early), beat finds the entry's last run two days back and fires it at once: digests at 05:00.
    PeriodicTask.objects.filter(name=SWEEP).update(last_run_at=now)
    logger.warning("The daily review sweep had not run by its time today; ran it from the delivery tick.")
    return added
