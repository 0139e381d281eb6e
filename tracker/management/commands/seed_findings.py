from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tracker.seeding import SeedError, default_paths, display_path, seed


class Command(BaseCommand):
    help = "Load inspection findings from seed files (default: every file in seeds/). Idempotent and all-or-nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="Seed files to load (default: seeds/*.yaml).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would change and change nothing.")

    def handle(self, *args, paths: list[Path], dry_run: bool, **options) -> None:
        paths = paths or default_paths()
        if not paths:
            raise CommandError("No seed files found in seeds/.")
        try:
            report = seed(paths, dry_run=dry_run)
        except SeedError as exc:
            raise CommandError(f"Nothing was loaded. Fix these problems and run again:\n{exc}") from None
        verb = "Would create" if dry_run else "Created"
        for line in report.created:
            self.stdout.write(f"{verb} {line}")
        for line in report.updated:
            self.stdout.write(f"{'Would update' if dry_run else 'Updated'} {line}")
        for line in report.notes:
            self.stdout.write(self.style.WARNING(line))
        names = ", ".join(display_path(p) for p in paths)
        if not report.changed:
            self.stdout.write(self.style.SUCCESS(f"Nothing to change: the database already matches {names}."))
        elif dry_run:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: {len(report.created)} to create, {len(report.updated)} to update; nothing was changed."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Done: {len(report.created)} created, {len(report.updated)} updated.")
            )
