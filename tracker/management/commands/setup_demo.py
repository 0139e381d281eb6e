"""Roles, demo users and demo ownership for a first run. Passwords are generated, never committed."""

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tracker import outcome_demo, workflow
from tracker.models import Recommendation, User

DEMO_USERS = ["lead", "reviewer", "owner", "owner2", "viewer"]
# Who owns what in the demo: enough for every page and reminder stage to have something to show.
DEMO_OWNERS = {"owner": ["CC1", "CC2", "OBS1", "OBS4", "OBS8"], "owner2": ["CS1", "CS2", "OBS2"]}


class Command(BaseCommand):
    help = "Load role groups and demo users, give them passwords (kept in var/demo-credentials.txt) and owners."

    def handle(self, *args, **options) -> None:
        call_command("loaddata", "groups", verbosity=0)
        if not Recommendation.objects.exists():
            raise CommandError("Seed the findings first: python manage.py seed_findings")
        call_command("loaddata", "demo_users", verbosity=0)
        credentials = self._passwords()
        lead = User.objects.get(username="lead")
        for username, references in DEMO_OWNERS.items():
            owner = User.objects.get(username=username)
            for rec in Recommendation.objects.with_related().filter(
                finding__reference__in=references,
                finding__inspection__organisation=lead.organisation,
                owner__isnull=True,
            ):
                workflow.assign_owner(rec, by=lead, owner=owner, reason="Demo set-up")
        # Issue 16: demo plans and measures on the causes of concern, marked as demo.
        outcome_demo.add_demo_outcomes(lead, User.objects.get(username="owner"), User.objects.get(username="owner2"))
        self.stdout.write("Demo users (password in brackets); sign in at " + settings.SITE_URL + "/ or /admin/:")
        for username in DEMO_USERS:
            user = User.objects.get(username=username)
            roles = ", ".join(user.groups.values_list("name", flat=True))
            self.stdout.write(f"  {username:<9} [{credentials[username]}]  {roles}: {user.get_full_name()}")

    def _passwords(self) -> dict[str, str]:
        """Reuse the passwords made on the first run, so they stay the same across restarts."""
        path = Path(settings.VAR_DIR) / "demo-credentials.txt"
        known: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                name, _, password = line.partition(" ")
                known[name] = password
        for username in DEMO_USERS:
            known.setdefault(username, secrets.token_urlsafe(12))
            user = User.objects.get(username=username)
            if not user.check_password(known[username]):
                user.set_password(known[username])
                user.save(update_fields=["password"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{name} {known[name]}\n" for name in DEMO_USERS))
        path.chmod(0o600)
        return known
