"""Run the review-reminder sweep and delivery now, synchronously, and say what went to whom."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from tracker import reminders, schedule
from tracker.models import Reminder


class Command(BaseCommand):
    help = "Plan the reminders due today and send one digest per recipient (the same work as the daily task)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Show who would get which reminders; change and send nothing."
        )
        parser.add_argument(
            "--max-seconds",
            type=int,
            default=None,
            help="Start no new digest after this many seconds (default: half of REMINDER_LEASE_SECONDS); "
            "the rest goes out on the next run.",
        )

    def handle(self, *args, dry_run: bool, max_seconds: int | None, **options) -> None:
        lease = settings.REMINDER_LEASE_SECONDS
        max_seconds = lease // 2 if max_seconds is None else max_seconds
        if not 1 <= max_seconds < lease:
            raise CommandError(f"--max-seconds must be from 1 to {lease - 1} (below REMINDER_LEASE_SECONDS).")
        if dry_run:
            self._preview()
            return
        problems = reminders.timing_problems()
        if problems:
            raise CommandError("Unsafe reminder timing: " + " ".join(problems))
        deadline = time.monotonic() + max_seconds
        added = schedule.sweep()  # recorded as the day's sweep, like beat's
        report = reminders.deliver(deadline=deadline)
        self.stdout.write(f"Planned {added} new reminder(s).")
        for address, items in report.sent:
            self.stdout.write(f"Sent a digest of {len(items)} item(s) to {address}:")
            for line in items:
                self.stdout.write(f"  {line}")
        for address, error in report.retrying:
            self.stdout.write(self.style.WARNING(f"Will retry {address}: {error}"))
        for address, error in report.failed:
            self.stdout.write(self.style.ERROR(f"Failed for {address}: {error}"))
        if report.cancelled:
            self.stdout.write(f"Cancelled {report.cancelled} reminder(s) that were no longer due.")
        if report.deferred:
            self.stdout.write(
                self.style.WARNING(
                    f"Stopped after {max_seconds}s; {report.deferred} reminder(s) go out on the next run."
                )
            )
        if not (report.sent or report.retrying or report.failed or report.deferred):
            self.stdout.write("Nothing to send.")

    def _preview(self) -> None:
        # The real planning query, inside a transaction that is always rolled back.
        now = timezone.now()
        with transaction.atomic():
            added = reminders.plan()
            waiting = list(
                Reminder.objects.filter(state=Reminder.State.PENDING)
                .select_related(
                    "recommendation__finding",
                    "recipient",
                    "plan_action__recommendation__finding",
                    "measure__recommendation__finding",
                )
                .order_by("recipient__username", "stage", "review_due")
            )
            transaction.set_rollback(True)
        self.stdout.write(f"Dry run: would plan {added} new reminder(s); nothing was changed or sent.")
        by_recipient: dict[str, list[Reminder]] = {}
        for row in waiting:
            by_recipient.setdefault(row.recipient.email or f"{row.recipient} (no address)", []).append(row)
        for address, rows in by_recipient.items():
            self.stdout.write(f"Would send a digest of {len(rows)} item(s) to {address}:")
            for row in rows:
                waiting = row.attempts and row.next_attempt_at > now
                wait = f"; next attempt after {row.next_attempt_at:%Y-%m-%d %H:%M}" if waiting else ""
                if row.review_due:
                    when = f"review due {row.review_due}"
                elif row.due:
                    when = f"due {row.due}"
                else:
                    when = "notification of a workflow step"
                self.stdout.write(f"  {_about(row)} {row.get_stage_display().lower()} ({when}{wait})")
        if not by_recipient:
            self.stdout.write("Nothing to send.")


def _about(row: Reminder) -> str:
    """The recommendation's reference the row is about, or its item's kind and id (no titles)."""
    if row.recommendation_id is not None:
        return row.recommendation.finding.reference
    if row.plan_action_id is not None:
        return f"plan action {row.plan_action_id} on {row.plan_action.recommendation.finding.reference}"
    if row.measure_id is not None:
        return f"measure {row.measure_id} on {row.measure.recommendation.finding.reference}"
    return f"{row.get_deadline_display().lower()} of inspection {row.inspection_id}"
