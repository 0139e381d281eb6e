"""setup_demo: a demo that looks a few months in, made through the workflow, told once, never touching seeds/."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from tracker import boardpack, workflow
from tracker.management.commands import setup_demo
from tracker.models import Evidence, ProgressUpdate, Recommendation, RecommendationEvent, Reminder, User
from tracker.seeding import seed

pytestmark = pytest.mark.django_db

SEEDS = Path(django_settings.BASE_DIR) / "seeds"


@pytest.fixture
def seeded(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the credentials file
    seed()


def _demo() -> dict[str, Recommendation]:
    call_command("setup_demo", stdout=io.StringIO())
    return {
        rec.reference: rec
        for rec in Recommendation.objects.with_related().filter(finding__inspection__slug=setup_demo.DEMO_INSPECTION)
    }


def test_the_demo_spreads_work_the_way_a_tracker_looks_a_few_months_in(seeded):
    recs = _demo()
    today = timezone.localdate()

    owned = [rec for rec in recs.values() if rec.owner]
    assert len(owned) == 17 and {rec.reference for rec in recs.values() if not rec.owner} == {"OBS3", "OBS6"}
    statuses = [rec.status for rec in recs.values()]
    assert statuses.count("closed") == 1 and recs["OBS4"].status == "closed"
    assert statuses.count("awaiting_assurance") == 1 and recs["CC2"].status == "awaiting_assurance"
    returned = RecommendationEvent.objects.get(recommendation=recs["CS1"], action="rejected")
    assert returned.actor.username == "reviewer" and "response times" in returned.reason
    assert recs["CS1"].status == "in_progress"
    overdue = {ref for ref, rec in recs.items() if rec.is_overdue(today)}
    assert overdue == {"CC1", "CS2"}
    assert (today - recs["CC1"].next_review_due).days >= django_settings.REMINDER_ESCALATION_DAYS  # escalated
    assert {ref for ref, rec in recs.items() if rec.is_due_soon(today)} == {"OBS1", "GJ2", "OBS8"}
    assert [rec.rag for rec in recs.values()].count("red") == 2
    moved = RecommendationEvent.objects.get(recommendation=recs["CC1"], action="target_date_changed", reason__gt="")
    assert "two months later" in moved.reason and moved.at > timezone.now() - dt.timedelta(days=30)
    assert recs["OBS2"].target_missed(today) and recs["OBS5"].target_date is None


def test_every_change_is_the_workflows_by_a_demo_user_on_the_day_the_story_says(seeded):
    recs = _demo()
    events = RecommendationEvent.objects.filter(recommendation__in=recs.values()).exclude(action="created")
    assert {event.actor.username for event in events} == {"lead", "reviewer", "owner", "owner2"}
    # Backdated over four months, and nothing written today except the reminders' review dates.
    now = timezone.now()
    assert all(now - dt.timedelta(days=121) < event.at < now - dt.timedelta(days=5) for event in events)
    assert all(rec.created_at < now - dt.timedelta(days=119) for rec in recs.values())
    closed = RecommendationEvent.objects.get(recommendation=recs["OBS4"], action="closed")
    assert closed.actor.username == "reviewer" != recs["OBS4"].owner.username  # four eyes held
    assert all(rec.version > 1 for rec in recs.values() if rec.owner)  # each went through the workflow
    # Marked as demo: every piece of evidence is a note that says so; the users are the demo users.
    assert Evidence.objects.count() == 5  # CC2: 2, OBS4: 2, CS1: 1
    assert all(item.note.startswith("Demo note:") for item in Evidence.objects.all())
    assert all(user.email.endswith("@cleveland.example") for user in User.objects.all())


@pytest.mark.django_db(transaction=True)  # reminders are never sent inside a transaction
def test_the_first_sweep_sends_due_soon_overdue_escalation_and_unowned_digests(seeded):
    _demo()
    call_command("send_review_reminders", stdout=io.StringIO())

    by_recipient = {message.to[0].split("@")[0]: message for message in mail.outbox}
    assert set(by_recipient) == {"owner", "owner2", "reviewer", "lead"}  # one digest each
    stages = {
        (row.recipient.username, row.stage, row.recommendation.reference)
        for row in Reminder.objects.filter(review_due__isnull=False).select_related(
            "recipient", "recommendation__finding"
        )
    }
    dates = {
        (row.recipient.username, row.stage, row.plan_action.recommendation.reference if row.plan_action else None)
        for row in Reminder.objects.filter(due__isnull=False).select_related(
            "recipient", "plan_action__recommendation__finding"
        )
    }

    # The story's own steps are months old: their notifications are history, none is sent now.
    assert not Reminder.objects.filter(event__isnull=False).exclude(state=Reminder.State.CANCELLED).exists()
    assert stages == {
        ("owner", "due_soon", "OBS1"),
        ("owner", "due_soon", "OBS8"),
        ("owner", "overdue", "CC1"),
        ("owner2", "due_soon", "GJ2"),
        ("owner2", "overdue", "CS2"),
        ("reviewer", "escalation", "CC1"),  # the owner's escalation contact
        ("lead", "unowned", "OBS3"),
        ("lead", "unowned", "OBS6"),
    }
    # The ledger's other items: only the demo plans' one action a week late (to owner2, on each cause of
    # concern). The measures have last month's figure; the inspection's PCC response passed long ago and it
    # has no action plan or revisit date: a months-old deadline is history, never news.
    assert dates == {("owner2", "action_overdue", "CC1"), ("owner2", "action_overdue", "CC2")}
    week_ago = timezone.localdate() - dt.timedelta(days=7)
    assert set(Reminder.objects.filter(due__isnull=False).values_list("due", flat=True)) == {week_ago}
    assert "An action you own on a recommendation's plan is overdue." in by_recipient["owner2"].body
    assert "[Demo]" not in by_recipient["owner2"].body  # the action's own words stay behind sign-in


def _snapshot() -> dict:
    histories = (Recommendation.history, ProgressUpdate.history, Evidence.history)
    return {
        "recommendations": list(Recommendation.objects.order_by("pk").values()),
        "events": list(RecommendationEvent.objects.order_by("pk").values()),
        "updates": list(ProgressUpdate.objects.order_by("pk").values()),
        "evidence": list(Evidence.objects.order_by("pk").values()),
        "history": [list(h.order_by("history_id").values()) for h in histories],
        "users": list(User.objects.order_by("pk").values()),
        "groups": list(User.groups.through.objects.order_by("pk").values()),
    }


def _seeds_digest() -> str:
    return hashlib.sha256(
        b"".join(path.read_bytes() for path in sorted(SEEDS.rglob("*")) if path.is_file())
    ).hexdigest()


def test_running_it_again_changes_nothing_and_seeds_are_never_touched(seeded):
    seeds_before = _seeds_digest()
    _demo()
    first = _snapshot()
    credentials = (django_settings.VAR_DIR / "demo-credentials.txt").read_text()

    _demo()

    assert _snapshot() == first
    assert (django_settings.VAR_DIR / "demo-credentials.txt").read_text() == credentials
    assert _seeds_digest() == seeds_before


def test_recommendations_people_have_worked_on_are_left_as_they_are(seeded):
    call_command("loaddata", "groups", "demo_users", verbosity=0)
    lead, owner2 = User.objects.get(username="lead"), User.objects.get(username="owner2")
    cc1 = Recommendation.objects.with_related().get(
        finding__reference="CC1", finding__inspection__slug="cleveland-police-2025-ncpi"
    )
    workflow.assign_owner(cc1, by=lead, owner=owner2, reason="Agreed with the chief officer")
    before = _snapshot()["events"]

    _demo()

    assert _snapshot()["events"] == before
    cc1.refresh_from_db()
    assert cc1.owner == owner2 and not ProgressUpdate.objects.exists()


def test_a_database_from_the_first_demo_gets_the_story_without_its_set_up_noise_in_the_board_pack(seeded):
    call_command("loaddata", "groups", "demo_users", verbosity=0)
    lead, owner = User.objects.get(username="lead"), User.objects.get(username="owner")
    cc1 = Recommendation.objects.with_related().get(
        finding__reference="CC1", finding__inspection__slug=setup_demo.DEMO_INSPECTION
    )
    workflow.assign_owner(cc1, by=lead, owner=owner, reason=setup_demo.OLD_DEMO_REASON)  # as the first demo did

    recs = _demo()

    assert recs["OBS4"].status == "closed"  # the story was told
    pack = boardpack.build(lead, recs["CC1"].finding.inspection, since=boardpack.default_since())
    assert setup_demo.OLD_DEMO_REASON not in {event.reason for event in pack.changes}
