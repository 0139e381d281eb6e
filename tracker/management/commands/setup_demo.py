"""Roles, demo users and a demo that looks a few months in, for a first run. Passwords are generated, never committed.

The demo story (``tell_the_story``) gives the 2025 Cleveland recommendations what a tracker has about
four months after go-live: owners on most, target dates (one put back, with its reason; one passed),
progress updates with RAG ratings, evidence, one recommendation awaiting assurance, one returned to its
owner with the reviewer's reason, one closed, and review dates spread so that the first reminder sweep
sends the owners their due-soon and overdue digests, an escalation to the owners' escalation contact and
the unowned list to the governance lead. Each role's home then has work on it.

Every change goes through ``tracker.workflow``, as the demo users, so the rules hold. Two things are
written directly, and only here: the rows each step wrote are moved back to the day the story says it
happened (``_backdated``: timestamps only), and each review date is put where the demo's past reviews
would have left it (``_review_dates``: the workflow only ever moves a review date forwards from today).

Demo data is marked as demo: the users are the demo users of ``fixtures/demo_users.json`` (addresses at
``cleveland.example``) and every piece of evidence is a note that says it is a demo note. ``seeds/`` is
never touched. The story is told once: if any recommendation of the inspection has been worked on
(anything on its timeline beyond its creation), it is left exactly as it is, so running the command again
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from tracker import outcome_demo, workflow
from tracker.models import Evidence, Inspection, ProgressUpdate, Recommendation, RecommendationEvent, Reminder, User

DEMO_USERS = ["lead", "reviewer", "owner", "owner2", "viewer"]
DEMO_INSPECTION = "cleveland-police-2025-ncpi"
WENT_LIVE_DAYS_AGO = 120  # the recommendations were created about four months ago
# The first demo (before the story) gave owners with this reason; such a database still gets the story.
OLD_DEMO_REASON = "Demo set-up"
DEMO_NOTE = (
    "Demo note: this evidence is invented for the demonstration. In a live tracker it would be the "
    "report itself (a file) or a link to where it is kept."
)

Event = RecommendationEvent.Action
Status = Recommendation.Status
_TIMESTAMPED = (RecommendationEvent, ProgressUpdate, Evidence)
_HISTORIES = (Recommendation.history.model, ProgressUpdate.history.model, Evidence.history.model)


class Command(BaseCommand):
    help = (
        "Load role groups and demo users, give them passwords (kept in var/demo-credentials.txt), and give "
        "the 2025 Cleveland recommendations a few months of demo history (once)."
    )

    def handle(self, *args, **options) -> None:
        call_command("loaddata", "groups", verbosity=0)
        if not Recommendation.objects.exists():
            raise CommandError("Seed the findings first: python manage.py seed_findings")
        # Loaded only when missing: loading again would reset the passwords (and so change something).
        if User.objects.filter(username__in=DEMO_USERS).count() < len(DEMO_USERS):
            call_command("loaddata", "demo_users", verbosity=0)
        credentials = self._passwords()
        self.stdout.write(tell_the_story())
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


# The story.


def tell_the_story(today: dt.date | None = None) -> str:
    """Give the demo inspection's recommendations their history, once; say what was done."""
    today = today or timezone.localdate()
    lead = User.objects.get(username="lead")
    inspection = Inspection.objects.filter(organisation_id=lead.organisation_id, slug=DEMO_INSPECTION).first()
    if inspection is None:
        return f"Demo history: skipped (no inspection {DEMO_INSPECTION!r} in {lead.organisation})."
    recs = Recommendation.objects.filter(finding__inspection=inspection)
    worked_on = (
        RecommendationEvent.objects.filter(recommendation__in=recs)
        .exclude(action=Event.CREATED)
        .exclude(action=Event.OWNER_CHANGED, reason=OLD_DEMO_REASON)
    )
    if worked_on.exists():
        return "Demo history: already in place (or people have worked on these recommendations): left as it is."
    with transaction.atomic():
        Story(inspection, today).tell()
        # Issue 16: demo plans and measures on the causes of concern, marked as demo, told a week ago.
        with _backdated(7):
            outcome_demo.add_demo_outcomes(
                lead, User.objects.get(username="owner"), User.objects.get(username="owner2"), today=today
            )
    return (
        f"Demo history: {recs.count()} recommendations of {inspection.title} given four months of owners, "
        "updates, evidence and reviews."
    )


class Story:
    def __init__(self, inspection: Inspection, today: dt.date) -> None:
        self.inspection = inspection
        self.today = today
        self.users = {user.username: user for user in User.objects.filter(username__in=DEMO_USERS)}

    def rec(self, reference: str) -> Recommendation:
        return Recommendation.objects.with_related().get(
            finding__inspection=self.inspection, finding__reference=reference
        )

    def day(self, days_from_today: int) -> dt.date:
        return self.today + dt.timedelta(days=days_from_today)

    # One workflow call each, as a demo user, backdated to the day it happened.

    def owner(self, days_ago: int, reference: str, owner: str, reason: str = "") -> None:
        rec = self.rec(reference)
        if rec.owner_id == self.users[owner].pk:  # given by the first demo already: moved to the story's day
            when = timezone.now() - dt.timedelta(days=days_ago)
            rec.events.filter(action=Event.OWNER_CHANGED, reason=OLD_DEMO_REASON).update(at=when)
            return
        with _backdated(days_ago):
            workflow.assign_owner(rec, by=self.users["lead"], owner=self.users[owner], reason=reason)

    def target(self, days_ago: int, reference: str, days_from_today: int, reason: str = "") -> None:
        with _backdated(days_ago):
            workflow.change_target_date(
                self.rec(reference), by=self.users["lead"], target_date=self.day(days_from_today), reason=reason
            )

    def update(self, days_ago: int, reference: str, narrative: str, rag: str | None = None) -> None:
        rec = self.rec(reference)
        with _backdated(days_ago):
            workflow.post_update(rec, by=rec.owner, narrative=narrative, rag=rag)

    def evidence(self, days_ago: int, reference: str, category: str, description: str) -> None:
        rec = self.rec(reference)
        with _backdated(days_ago):
            workflow.add_evidence(
                rec, by=rec.owner, kind=Evidence.Kind.NOTE, category=category, description=description, note=DEMO_NOTE
            )

    def verdict(self, days_ago: int, reference: str, description: str, *, accept: bool, reason: str = "") -> None:
        item = Evidence.objects.select_related("recommendation").get(
            recommendation=self.rec(reference), description=description
        )
        with _backdated(days_ago):
            workflow.review_evidence(item, by=self.users["reviewer"], accept=accept, reason=reason)

    def submit(self, days_ago: int, reference: str) -> None:
        rec = self.rec(reference)
        with _backdated(days_ago):
            workflow.submit_for_assurance(rec, by=rec.owner)

    def close(self, days_ago: int, reference: str, reason: str = "") -> None:
        with _backdated(days_ago):
            workflow.close(self.rec(reference), by=self.users["reviewer"], reason=reason)

    def return_to_owner(self, days_ago: int, reference: str, reason: str) -> None:
        with _backdated(days_ago):
            workflow.reject(self.rec(reference), by=self.users["reviewer"], reason=reason)

    def tell(self) -> None:
        _went_live(self.inspection, self.today - dt.timedelta(days=WENT_LIVE_DAYS_AGO))
        board = "Agreed at the improvement board"
        for reference, owner in [
            ("CC1", "owner"),
            ("CC2", "owner"),
            ("OBS4", "owner"),
            ("OBS1", "owner"),
            ("OBS8", "owner"),
            ("GJ1", "owner"),
            ("OBS5", "owner"),
            ("CS1", "owner2"),
            ("CS2", "owner2"),
            ("OBS2", "owner2"),
            ("GJ2", "owner2"),
            ("GJ3", "owner"),
            ("GJ4", "owner2"),
            ("OBS9", "owner"),
            ("OBS10", "owner2"),
            ("OBS11", "owner"),
        ]:
            self.owner(112, reference, owner, board)
        self.owner(30, "OBS7", "owner2", "Moved from the public protection unit's plan")  # OBS3, OBS6: no owner yet

        for reference, days_from_today in [
            ("CC1", -12),  # put back below
            ("CC2", 30),
            ("OBS4", -20),
            ("OBS1", 40),
            ("OBS8", 90),
            ("GJ1", 120),
            ("CS1", 45),
            ("CS2", 60),
            ("OBS2", -9),  # passed, not yet moved
            ("GJ2", 150),
            ("OBS7", 100),
            ("GJ3", 180),
            ("GJ4", 180),
            ("OBS9", 120),
            ("OBS10", 90),
            ("OBS11", 150),
        ]:  # OBS5: no target date yet
            self.target(105, reference, days_from_today)

        # CC1: red, slipping, its review badly overdue (an escalation).
        self.update(90, "CC1", "Audit of missing-child episodes started in all three districts.", "amber")
        self.update(
            46,
            "CC1",
            "The audit found return-home interviews completed late in a third of episodes. A joint plan with "
            "the council's missing team is drafted but not agreed.",
            "red",
        )
        self.target(12, "CC1", 75, "The council's missing-children data arrives two months later than planned.")

        # CC2: outputs accepted, outcome evidence added, awaiting assurance for six days.
        self.update(80, "CC2", "Online exploitation training booked for all investigators.", "amber")
        self.evidence(40, "CC2", Evidence.Category.OUTPUT, "Training attendance: 96% of investigators trained")
        self.verdict(35, "CC2", "Training attendance: 96% of investigators trained", accept=True)
        self.update(10, "CC2", "Case review shows referrals now reach the online team within two days.", "green")
        self.evidence(8, "CC2", Evidence.Category.OUTCOME, "Case review: time from referral to the online team")
        self.submit(6, "CC2")

        # OBS4: closed after assurance.
        self.update(75, "OBS4", "Training now ends with a case audit by each supervisor.", "amber")
        self.evidence(70, "OBS4", Evidence.Category.OUTPUT, "Training completion report")
        self.evidence(45, "OBS4", Evidence.Category.OUTCOME, "Supervisors' case audit after training")
        self.update(44, "OBS4", "Supervisors' audit shows better risk assessments after training.", "green")
        self.submit(30, "OBS4")
        self.verdict(26, "OBS4", "Training completion report", accept=True)
        self.verdict(26, "OBS4", "Supervisors' case audit after training", accept=True)
        self.close(25, "OBS4", "The audit shows the training changed practice, not only attendance.")

        # CS1: submitted, then returned to its owner with the reviewer's reason.
        self.update(60, "CS1", "Medium-risk missing reports now reviewed by a sergeant within an hour.", "amber")
        self.evidence(20, "CS1", Evidence.Category.OUTPUT, "Revised missing-person procedure")
        self.submit(15, "CS1")
        self.verdict(
            9,
            "CS1",
            "Revised missing-person procedure",
            accept=False,
            reason="A procedure shows what should happen, not what does: add the response-time audit.",
        )
        self.return_to_owner(
            9,
            "CS1",
            "The procedure alone does not show that medium-risk missing children are now found sooner. Add the "
            "audit of response times across all three districts, then submit again.",
        )

        # The rest: updates of various ages and ratings.
        self.update(55, "CS2", "Return-home interview questions rewritten with the council.", "amber")
        self.update(
            50, "OBS2", "Recruitment to the child abuse investigation team under way: 4 of 9 posts filled.", "amber"
        )
        self.update(40, "OBS1", "Missing and exploitation meetings now share one agenda.", "amber")
        self.update(33, "OBS8", "Language guidance issued; supervisors sample case notes monthly.", "green")
        self.update(27, "GJ2", "Investigation plans now checked at 7 and 28 days.", "green")
        self.update(
            18,
            "OBS5",
            "Risk assessments in the control room are still inconsistent; a new triage tool is being tested.",
            "red",
        )

        # Review dates, as the demo's past reviews would have left them: spread so that the first sweep
        # has an escalation, overdue reviews and reviews due this week.
        _review_dates(
            self.inspection,
            {
                "CC1": self.day(-18),  # 18 days overdue: escalated to the owner's escalation contact
                "CS2": self.day(-5),  # overdue
                "OBS1": self.day(2),  # due this week
                "GJ2": self.day(4),  # due this week
                "OBS8": self.day(6),  # due this week
                "OBS3": self.day(8),
                "OBS5": self.day(10),
                "CC2": self.day(12),
                "OBS2": self.day(13),
                "OBS6": self.day(15),
                "GJ1": self.day(16),
                "CS1": self.day(20),
                "OBS7": self.day(23),
                "GJ3": self.day(25),
                "GJ4": self.day(26),
                "OBS9": self.day(27),
                "OBS10": self.day(28),
                "OBS11": self.day(29),
                "OBS4": self.day(3),  # closed: no reminder
            },
        )


@contextmanager
def _backdated(days_ago: int) -> Iterator[None]:
    """Run a workflow call now, then move the rows it wrote back ``days_ago`` days: timestamps only.

    The rules are checked, and the history written, by the workflow as for anyone; only the dates move,
    so the timeline, the field history and the four-eyes record all tell the story on its own days.
    """
    marks = {model: model.objects.aggregate(last=Max("pk"))["last"] or 0 for model in _TIMESTAMPED}
    history_marks = {model: model.objects.aggregate(last=Max("history_id"))["last"] or 0 for model in _HISTORIES}
    reminder_mark = Reminder.objects.aggregate(last=Max("pk"))["last"] or 0
    started = timezone.now()
    yield
    when = started - dt.timedelta(days=days_ago)
    # The story's steps are history, not news: their notifications (tracker.notifications) are not sent now.
    Reminder.objects.filter(pk__gt=reminder_mark, event__isnull=False).update(
        state=Reminder.State.CANCELLED,
        last_error="Demo history: the step is told as months ago, so nobody is told now.",
    )
    RecommendationEvent.objects.filter(pk__gt=marks[RecommendationEvent]).update(at=when)
    ProgressUpdate.objects.filter(pk__gt=marks[ProgressUpdate]).update(created_at=when)
    Evidence.objects.filter(pk__gt=marks[Evidence]).update(added_at=when)
    Evidence.objects.filter(reviewed_at__gte=started).update(reviewed_at=when)
    for model, mark in history_marks.items():
        model.objects.filter(history_id__gt=mark).update(history_date=when)


def _went_live(inspection: Inspection, on: dt.date) -> None:
    """The recommendations were created (seeded) on ``on``: their creation, timeline and history say so."""
    when = timezone.make_aware(dt.datetime.combine(on, dt.time(9, 0)))
    recs = Recommendation.objects.filter(finding__inspection=inspection)
    ids = list(recs.values_list("pk", flat=True))
    recs.update(created_at=when)
    RecommendationEvent.objects.filter(recommendation_id__in=ids, action=Event.CREATED).update(at=when)
    Recommendation.history.filter(Q(history_type="+"), id__in=ids).update(history_date=when)


def _review_dates(inspection: Inspection, due: dict[str, dt.date]) -> None:
    """Set each next review date where the demo's past reviews would have left it.

    Written directly because the workflow moves review dates only forwards from today; recorded in the
    field history with the reason, like any other change to the row.
    """
    for rec in Recommendation.objects.filter(finding__inspection=inspection, finding__reference__in=due).with_related():
        rec.next_review_due = due[rec.reference]
        rec._change_reason = "Demo: review date as the demo's past reviews left it"
        rec.save(update_fields=["next_review_due", "updated_at"])
