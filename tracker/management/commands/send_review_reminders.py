"""Run the review-reminder sweep and delivery now, synchronously, and say what went to whom."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tracker import reminders
from tracker.models import Reminder


class Command(BaseCommand):
    help = "Plan the reminders due today and send one digest per recipient (the same work as the daily task)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Show who would get which reminders; change and send nothing."
        )

    def handle(self, *args, dry_run: bool, **options) -> None:
        if dry_run:
            self._preview()
            return
        added = reminders.plan()
        report = reminders.deliver()
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
        if not (report.sent or report.retrying or report.failed):
            self.stdout.write("Nothing to send.")

    def _preview(self) -> None:
        # The real planning query, inside a transaction that is always rolled back.
        now = timezone.now()
        with transaction.atomic():
            added = reminders.plan()
            waiting = list(
                Reminder.objects.filter(state=Reminder.State.PENDING)
                .select_related("recommendation__finding", "recipient")
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
                self.stdout.write(
                    f"  {row.recommendation.finding.reference} {row.get_stage_display().lower()} "
                    f"(review due {row.review_due}{wait})"
                )
        if not by_recipient:
            self.stdout.write("Nothing to send.")
