"""Every group of home selects exactly what its rule says, over varied data: home's count and first rows
and the list's ``?group=`` against the rule evaluated plainly, one recommendation at a time, in Python."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from tests.factories import EvidenceFactory, InspectionFactory, OrganisationFactory, RecommendationFactory, UserFactory
from tests.one_rule import MEASURE
from tracker import inbox, permissions, policy
from tracker.models import (
    OutcomeMeasure,
    PlanAction,
    ProgressUpdate,
    Recommendation,
    RecommendationEvent,
    Reminder,
)
from tracker.permissions import Role

pytestmark = pytest.mark.django_db

Event = RecommendationEvent.Action
ASSURANCE = (Event.SUBMITTED, Event.REJECTED, Event.EVIDENCE_ADDED, Event.EVIDENCE_REJECTED, Event.REOPENED)


def _ago(rng: random.Random, now: dt.datetime, most_days: int) -> dt.datetime:
    return now - dt.timedelta(days=rng.randint(0, most_days), hours=rng.randint(1, 23), minutes=rng.randint(0, 59))


def build(rng: random.Random, inspection, people) -> None:
    """Recommendations in every status, owned by anyone or no one, with assurance events, moved target dates,
    work by the reviewer (some of it before a reopening), pending evidence, progress updates and failed
    reminders on the item, a plan action or a measure."""
    now, today = timezone.now(), timezone.localdate()
    for _ in range(45):
        first_owner = rng.choice([*people, None])
        rec = RecommendationFactory(
            finding__inspection=inspection,
            owner=first_owner,
            status=rng.choice(["not_started", "in_progress", "awaiting_assurance", "closed"]),
            rag=rng.choice(["", "red", "amber", "green"]),
            next_review_due=today + dt.timedelta(days=rng.randint(-20, 20)),
            target_date=rng.choice([None, today + dt.timedelta(days=rng.randint(-20, 40))]),
            review_interval_days=rng.choice([7, 14, 28]),
        )
        if rng.random() < 0.3:  # owned by someone else before: a history row with the first owner
            rec.owner = rng.choice([*people, None])
            rec.save()
        Recommendation.objects.filter(pk=rec.pk).update(created_at=_ago(rng, now, 90))
        events = [rng.choice(ASSURANCE) for _ in range(rng.randint(0, 3))]
        if rec.status == "awaiting_assurance":
            events.append(Event.SUBMITTED)
        events += [Event.TARGET_DATE_CHANGED] * rng.randint(0, 2)
        for action in events:
            RecommendationEvent.objects.create(
                recommendation=rec,
                action=action,
                actor=rng.choice(people),
                at=_ago(rng, now, 60),
                old_value=rng.choice(["none", "2027-01-31"]) if action == Event.TARGET_DATE_CHANGED else "",
            )
        for _ in range(rng.randint(0, 2)):
            EvidenceFactory(
                recommendation=rec,
                added_by=rng.choice(people),
                added_at=_ago(rng, now, 60),
                verdict=rng.choice(["pending", "accepted"]),
            )
        for _ in range(rng.randint(0, 2)):
            ProgressUpdate.objects.create(
                recommendation=rec, author=rng.choice(people), narrative="Checked.", created_at=_ago(rng, now, 120)
            )
        where = rng.choice(["none", "none", "item", "action", "measure"])
        state = rng.choice([Reminder.State.FAILED, Reminder.State.DEAD, Reminder.State.SENT])
        recipient = rng.choice(people)
        if where == "item":
            Reminder.objects.create(
                recommendation=rec, recipient=recipient, stage="overdue", review_due=today, state=state
            )
        elif where == "action":
            action = PlanAction.objects.create(recommendation=rec, description="Audit", owner=recipient, due_date=today)
            Reminder.objects.create(
                plan_action=action, recipient=recipient, stage="action_overdue", due=today, state=state
            )
        elif where == "measure":
            measure = OutcomeMeasure.objects.create(recommendation=rec, supplier=recipient, **MEASURE)
            Reminder.objects.create(
                measure=measure, recipient=recipient, stage="measure_data_due", due=today, state=state
            )


def _latest_assurance(rec: Recommendation) -> str:
    event = rec.events.filter(action__in=ASSURANCE).order_by("-at", "-pk").first()
    return event.action if event else ""


def _last_activity(rec: Recommendation) -> dt.datetime:
    update = ProgressUpdate.objects.filter(recommendation=rec).order_by("-created_at").first()
    return update.created_at if update else rec.created_at


def _failed(rec: Recommendation) -> bool:
    failed = Reminder.objects.filter(state__in=[Reminder.State.FAILED, Reminder.State.DEAD])
    return (
        failed.filter(recommendation=rec).exists()
        or failed.filter(plan_action__recommendation=rec).exists()
        or failed.filter(measure__recommendation=rec).exists()
    )


def plainly(key: str, rec: Recommendation, user, today: dt.date, now: dt.datetime) -> bool:
    """The group's rule for one recommendation, as the issue words it."""
    mine = rec.owner_id == user.pk and rec.is_open
    returned = mine and _latest_assurance(rec) in (Event.REJECTED, Event.EVIDENCE_REJECTED)
    overdue, soon, missed = rec.is_overdue(today), rec.is_due_soon(today), rec.target_missed(today)
    involved = user.pk in policy.involved_user_ids(rec)
    moved = rec.events.filter(
        action=Event.TARGET_DATE_CHANGED, at__gte=now - dt.timedelta(days=inbox.MOVED_WITHIN_DAYS)
    ).exclude(old_value="none")
    return {
        "returned": returned,
        "overdue": mine and overdue and not returned,
        "due_soon": mine and soon and not returned,
        "target_missed": mine and missed and not (returned or overdue or soon),
        "mine_rest": mine and not (returned or overdue or soon or missed),
        "awaiting": rec.status == "awaiting_assurance" and not involved,
        "evidence": rec.is_open
        and rec.status != "awaiting_assurance"
        and rec.evidence.filter(verdict="pending").exists()
        and not involved,
        "no_owner": rec.is_open and rec.owner_id is None,
        "no_target": rec.is_open and rec.target_date is None,
        "target_moved": rec.is_open and moved.exists(),
        "red": rec.is_open and rec.rag == "red",
        "stuck": rec.is_open and _last_activity(rec) < now - dt.timedelta(days=2 * rec.review_interval_days),
        "reminders_failed": _failed(rec),
    }[key]


def _order(key: str, rec: Recommendation):
    if key == "target_missed":
        return (rec.target_date, rec.pk)
    if key == "awaiting":
        return (rec.events.filter(action=Event.SUBMITTED).order_by("-at", "-pk").first().at, rec.pk)
    return (rec.next_review_due, rec.pk)


@pytest.mark.parametrize("seed", [1, 2, 3])
# Four eyes' exclusions as a list of ids, and (past INVOLVED_LISTED) as the query that finds them.
@pytest.mark.parametrize("involved_listed", [inbox.INVOLVED_LISTED, 0])
def test_each_groups_count_rows_and_list_are_its_rule_applied_to_each_item(seed, involved_listed, monkeypatch):
    monkeypatch.setattr(inbox, "INVOLVED_LISTED", involved_listed)
    rng = random.Random(seed)
    org = OrganisationFactory(slug=f"org{seed}")
    inspection = InspectionFactory(organisation=org)
    olly = UserFactory(username="olly", organisation=org, roles=[Role.OWNER])
    rita = UserFactory(username="rita", organisation=org, roles=[Role.REVIEWER])
    lead = UserFactory(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD])
    build(rng, inspection, [olly, rita, lead])
    # Another organisation's items, in every group of theirs: never in these people's.
    build(rng, InspectionFactory(organisation=OrganisationFactory(slug=f"other{seed}")), [olly, rita, lead])
    today, now = timezone.localdate(), timezone.now()
    for user in (olly, rita, lead):
        visible = permissions.visible_recommendations(user)
        recs = list(visible)
        shown = {g.group.key: g for _title, groups in inbox.inbox(user, visible) for g in groups}
        assert shown, user
        for key, group in shown.items():
            expected = sorted(
                (rec for rec in recs if plainly(key, rec, user, today, now)), key=lambda r: _order(key, r)
            )
            listed = inbox.filter_group(visible, user, key)
            assert sorted(listed.values_list("pk", flat=True)) == sorted(r.pk for r in expected), (user, key)
            assert group.count == len(expected), (user, key)
            assert [r.pk for r in group.rows] == [r.pk for r in expected[: inbox.INBOX_ROWS]], (user, key)


def test_a_viewers_figures_and_changes_are_a_fresh_count_of_what_they_see(org, inspection, olly, rita, lead, vic):
    rng = random.Random(4)
    build(rng, inspection, [olly, rita, lead])
    build(rng, InspectionFactory(organisation=OrganisationFactory(slug="other")), [olly, rita, lead])
    today, since = timezone.localdate(), timezone.now() - dt.timedelta(days=20)
    recs = list(permissions.visible_recommendations(vic))
    figures = inbox.summary(vic, permissions.visible_recommendations(vic))
    assert figures == {
        "open": sum(r.is_open for r in recs),
        "overdue": sum(r.is_overdue(today) for r in recs),
        "red": sum(r.is_open and r.rag == "red" for r in recs),
        "no_owner": sum(r.is_open and r.owner_id is None for r in recs),
        "awaiting": sum(r.status == "awaiting_assurance" for r in recs),
        "closed": sum(r.status == "closed" for r in recs),
    }
    vic.home_seen_at = since
    changes = inbox.changes_since(vic, permissions.visible_recommendations(vic))
    expected = RecommendationEvent.objects.filter(recommendation__organisation=org, at__gt=since).order_by("-at", "-pk")
    assert changes["total"] == expected.count() > 0
    assert changes["events"] == list(expected[: inbox.CHANGES_SHOWN])
