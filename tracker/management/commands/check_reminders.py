"""Reminder health for an external monitor: print the figures, exit 1 if something needs a person.

Exit status 1 (with each problem named on stderr) when the last completed review sweep is older than
``--max-sweep-age`` hours (26: a day, and time for the sweep to run), or none has completed; or when
more reminders are failed or dead than ``--max-failed`` / ``--max-dead`` (0). Otherwise 0. Every
organisation's reminders are counted: this is the platform operator's view.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracker import health
from tracker.models import Reminder


class Command(BaseCommand):
    help = "Print reminder health (last sweep, pending, retrying, failed, dead, beat lock); exit 1 on a problem."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-sweep-age",
            type=float,
            default=26,
            metavar="HOURS",
            help="A problem if the last completed sweep is older than this (default 26).",
        )
        parser.add_argument(
            "--max-failed", type=int, default=0, metavar="N", help="A problem if more reminders failed (default 0)."
        )
        parser.add_argument(
            "--max-dead", type=int, default=0, metavar="N", help="A problem if more reminders are dead (default 0)."
        )

    def handle(self, *args, max_sweep_age: float, max_failed: int, max_dead: int, **options) -> None:
        figures = health.reminder_health(Reminder.objects.all())
        for label, value in figures.lines(show_holder=True):
            self.stdout.write(f"{label}: {value}")
        problems = figures.problems(
            max_sweep_age=dt.timedelta(hours=max_sweep_age), max_failed=max_failed, max_dead=max_dead
        )
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
        self.stdout.write(self.style.SUCCESS("OK"))
