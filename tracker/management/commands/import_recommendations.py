from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tracker import permissions
from tracker.imports import ImportFailed, import_recommendations
from tracker.models import User


class Command(BaseCommand):
    help = (
        "Import a new inspection's recommendations from a CSV (UTF-8) or Excel (.xlsx) file, in the columns of an "
        "export. All-or-nothing: any problem is listed by row and column and nothing is changed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The CSV or .xlsx file.")
        parser.add_argument(
            "--as", dest="username", required=True, help="The governance lead doing the import (sets the organisation)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check the file and change nothing.")

    def handle(self, *args, path: Path, username: str, dry_run: bool, **options) -> None:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user called {username!r}.")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        try:
            report = import_recommendations(content, by=user, filename=path.name, dry_run=dry_run)
        except permissions.NotPermitted as exc:
            raise CommandError(str(exc)) from None
        except ImportFailed as exc:
            raise CommandError(f"Nothing was imported. Fix these problems and run again:\n{exc}") from None
        verb = "Would import" if dry_run else "Imported"
        for line in report.recommendations:
            self.stdout.write(f"{verb} {line}")
        done = f"{verb} {report.rows} recommendations into {', '.join(report.inspections)}."
        self.stdout.write(self.style.WARNING(done + " Nothing was changed.") if dry_run else self.style.SUCCESS(done))
