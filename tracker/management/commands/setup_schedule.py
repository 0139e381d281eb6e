"""Create the reminder schedule in django-celery-beat's tables, once, without undoing a lead's edits.

The daily sweep (07:00 Europe/London) and the delivery tick (every minute: retries, expired leases,
and today's sweep if beat missed it) are created only if missing; after that the governance lead owns
them in the admin (Periodic tasks), so re-running this command never moves a time or re-enables a
disabled task. ``--run-now`` also queues a one-off sweep for beat to run as soon as it starts (used by make run).
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

from tracker.schedule import DELIVERY, DELIVERY_TASK, START_UP, SWEEP, SWEEP_TASK

# Each entry expires shortly before its next run, so a backlog never runs the same job twice over.
SWEEP_EXPIRES_SECONDS = 23 * 3600
DELIVERY_EXPIRES_SECONDS = 50


class Command(BaseCommand):
    help = "Create the daily review-reminder sweep and the delivery tick in the beat schedule (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run-now", action="store_true", help="Also run one sweep as soon as beat starts.")

    @transaction.atomic
    def handle(self, *args, run_now: bool, **options) -> None:
        daily, _ = CrontabSchedule.objects.get_or_create(
            minute="0",
            hour="7",
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="Europe/London",
        )
        sweep, created = PeriodicTask.objects.get_or_create(
            name=SWEEP,
            defaults={
                "task": SWEEP_TASK,
                "crontab": daily,
                "expire_seconds": SWEEP_EXPIRES_SECONDS,
                "description": "Plans the reminders due today and sends one digest per recipient. "
                "Change the time here. If beat misses it, the delivery tick runs it within minutes.",
            },
        )
        self._say(sweep, created)
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
        tick, created = PeriodicTask.objects.get_or_create(
            name=DELIVERY,
            defaults={
                "task": DELIVERY_TASK,
                "interval": every_minute,
                "expire_seconds": DELIVERY_EXPIRES_SECONDS,
                "description": "Sends reminders whose retry time has come or whose worker died mid-send, "
                "and runs today's sweep if its time has passed without one.",
            },
        )
        self._say(tick, created)
        if run_now:
            clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=timezone.now().replace(microsecond=0))
            start_up, _ = PeriodicTask.objects.update_or_create(
                name=START_UP,
                defaults={
                    "task": SWEEP_TASK,
                    "clocked": clocked,
                    "one_off": True,
                    "enabled": True,
                    "expire_seconds": SWEEP_EXPIRES_SECONDS,
                    "description": "Queued by 'setup_schedule --run-now' so a first digest appears at once.",
                },
            )
            # Earlier start-up times are of no further use to anyone.
            ClockedSchedule.objects.filter(periodictask__isnull=True).delete()
            self.stdout.write(f"Queued '{start_up.name}' to run as soon as beat starts.")

    def _say(self, task: PeriodicTask, created: bool) -> None:
        when = (
            f"daily at {task.crontab.hour}:{task.crontab.minute:0>2} {task.crontab.timezone}"
            if task.crontab
            else str(task.interval)
        )
        state = "" if task.enabled else " (disabled)"
        verb = "Created" if created else "Kept as it is"
        self.stdout.write(f"{verb}: '{task.name}', {when}{state}")
