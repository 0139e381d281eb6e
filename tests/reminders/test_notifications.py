"""Notifications of workflow steps: who hears, exactly once, when they chose, and never a case detail.

The whole round goes over real SMTP (aiosmtpd on loopback); the rules about who is told are checked
on the ledger rows the workflow adds in its own transaction.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import london
from tracker import emails, notifications, reminders, tasks, workflow
from tracker.errors import InvalidInput
from tracker.models import NotificationPreference, Recommendation, Reminder
from tracker.permissions import Role

State = Reminder.State
Stage = Reminder.Stage
Kind = NotificationPreference.Kind
Delivery = NotificationPreference.Delivery

SECRET_REASON = "Child A's strategy minutes were not attached"


@pytest.fixture
def rec(org):
    return RecommendationFactory(
        finding__inspection__organisation=org,
        finding__reference="CC7",
        finding__summary="Child A went missing nine times in a month.",
        finding__quote="officers did not see the risk to Child A",
        title="Respond to missing children promptly",
        status=Recommendation.Status.IN_PROGRESS,
    )


@pytest.fixture
def lena(org):
    """A second governance lead, so that one lead's change reaches the other."""
    return UserFactory(username="lena", organisation=org, roles=[Role.GOVERNANCE_LEAD])


def _everyone_immediate(*people) -> None:
    for person in people:
        for kind in Kind.values:
            NotificationPreference.objects.update_or_create(
                user=person, kind=kind, defaults={"delivery": Delivery.IMMEDIATE}
            )


def _stages(received) -> set[tuple[str, str]]:
    """(recipient, stage) for each notice in these messages, read back from the words each stage uses."""
    found = set()
    for message in received:
        text = message.text.replace("\r\n", "\n")
        for stage, sentence in emails.NOTICE_TEXT.items():
            if sentence in text:
                found.add((message.rcpt_tos[0], str(stage)))
    return found


def _case_details(rec, *extra: str) -> list[str]:
    return [
        rec.title,
        rec.finding.reference,
        rec.finding.summary,
        rec.finding.quote,
        rec.outcome_measure,
        "Child A",
        *extra,
    ]


@pytest.mark.integration
def test_each_step_reaches_the_people_it_concerns_exactly_once_with_no_case_details(
    transactional_db, smtp, org, rec, lead, lena, rita, olly, otto
):
    _everyone_immediate(lead, lena, rita, olly, otto)
    seen = 0

    def delivered() -> set[tuple[str, str]]:
        nonlocal seen
        reminders.deliver()
        reminders.deliver()  # a second tick finds nothing more to send
        new = smtp.handler.received[seen:]
        seen = len(smtp.handler.received)
        assert len(new) == len({m.rcpt_tos[0] for m in new}), "one email per person per tick"
        for message in new:
            everything = " ".join([message.message["Subject"], message.text, message.html])
            for detail in _case_details(rec, SECRET_REASON, "Minutes of the strategy meeting"):
                assert detail not in everything, f"{detail!r} in an email"
            assert rec.get_absolute_url() in message.text
        return _stages(new)

    workflow.assign_owner(rec, by=lead, owner=olly)
    assert delivered() == {(olly.email, Stage.ASSIGNED)}

    workflow.assign_owner(rec, by=lead, owner=otto, reason="Olly moved team")
    assert delivered() == {(otto.email, Stage.ASSIGNED), (olly.email, Stage.UNASSIGNED)}

    first = workflow.add_evidence(
        rec, by=otto, kind="note", category="outcome", description="Minutes of the strategy meeting", note="..."
    )
    second = workflow.add_evidence(rec, by=otto, kind="note", category="outcome", description="Audit", note="...")
    workflow.submit_for_assurance(rec, by=otto)
    assert delivered() == {(rita.email, Stage.SUBMITTED)}  # the reviewer; not the leads, not otto himself

    workflow.review_evidence(first, by=rita, accept=False, reason=SECRET_REASON)
    assert delivered() == {(otto.email, Stage.EVIDENCE_REJECTED)}

    workflow.review_evidence(second, by=rita, accept=True)
    assert delivered() == {(otto.email, Stage.EVIDENCE_ACCEPTED)}

    workflow.reject(rec, by=rita, reason=SECRET_REASON)
    assert delivered() == {(otto.email, Stage.RETURNED)}

    workflow.submit_for_assurance(rec, by=otto)
    assert delivered() == {(rita.email, Stage.SUBMITTED)}

    workflow.close(rec, by=rita)
    assert delivered() == {(otto.email, Stage.CLOSED)}

    workflow.reopen(rec, by=lead, reason=SECRET_REASON)
    assert delivered() == {(otto.email, Stage.REOPENED)}

    workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 3, 31))
    assert delivered() == set()  # a first target date is planning, not news

    workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 6, 30), reason=SECRET_REASON)
    assert delivered() == {(lena.email, Stage.TARGET_MOVED)}  # the other lead; not the one who moved it

    workflow.remove_target_date(rec, by=lena, reason=SECRET_REASON)
    assert delivered() == {(lead.email, Stage.TARGET_MOVED)}

    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    assert Reminder.objects.count() == len(smtp.handler.received) == 12


@pytest.mark.integration
def test_a_retry_after_a_temporary_smtp_failure_sends_the_notification_once(
    transactional_db, smtp, org, rec, rita, otto
):
    rec.owner = otto
    rec.save()
    evidence = workflow.add_evidence(rec, by=otto, kind="note", category="output", description="Notes", note="...")
    smtp.handler.refuse[otto.email] = "451 4.3.0 Try again later"

    workflow.review_evidence(evidence, by=rita, accept=False, reason=SECRET_REASON)
    reminders.deliver()
    row = Reminder.objects.get()
    assert (row.state, row.attempts, smtp.handler.received) == (State.PENDING, 1, [])

    del smtp.handler.refuse[otto.email]
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5), tick=False):
        reminders.deliver()
        reminders.deliver()
    row.refresh_from_db()
    assert (row.state, row.attempts) == (State.SENT, 2)
    assert [r.rcpt_tos for r in smtp.handler.received] == [[otto.email]]
    assert _stages(smtp.handler.received) == {(otto.email, Stage.EVIDENCE_REJECTED)}


def test_a_daily_choice_waits_for_the_morning_digest_and_comes_with_the_reviews(sweep_at, org, rita, otto):
    notifications.set_preferences(otto, {Kind.RETURNED: Delivery.DAILY})
    rec = RecommendationFactory(
        finding__inspection__organisation=org, owner=otto, next_review_due=dt.date(2026, 5, 5), status="in_progress"
    )
    with time_machine.travel(london(2026, 4, 30, 15), tick=False):
        evidence = workflow.add_evidence(rec, by=otto, kind="note", category="output", description="N", note="...")
        workflow.review_evidence(evidence, by=rita, accept=False, reason=SECRET_REASON)
        assert reminders.deliver().as_dict()["digests_sent"] == 0  # held, not sent by the tick
    assert Reminder.objects.get().state == State.HELD

    (message,) = sweep_at(london(2026, 5, 1))

    assert message.to == [otto.email]
    assert "Due soon" in message.body  # the review reminder ...
    assert emails.NOTICE_TEXT[Stage.EVIDENCE_REJECTED] in message.body  # ... and the notice, in one email
    assert message.subject == "Recommendation reviews: 1 item and 1 update need your attention"
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}


def test_within_minutes_is_the_default_for_work_waiting_on_you_and_the_digest_for_the_rest(org, rec, lead, rita, olly):
    workflow.assign_owner(rec, by=lead, owner=olly)  # a new recommendation to plan: the digest
    evidence = workflow.add_evidence(rec, by=olly, kind="note", category="output", description="N", note="...")
    workflow.submit_for_assurance(rec, by=olly)  # awaiting the reviewer: within minutes
    workflow.review_evidence(evidence, by=rita, accept=True)  # good news: the digest

    assert set(Reminder.objects.values_list("recipient__username", "stage", "state")) == {
        ("olly", Stage.ASSIGNED, State.HELD),
        ("rita", Stage.SUBMITTED, State.PENDING),
        ("olly", Stage.EVIDENCE_ACCEPTED, State.HELD),
    }
    workflow.reject(rec, by=rita, reason=SECRET_REASON)  # returned to you: within minutes
    assert Reminder.objects.get(stage=Stage.RETURNED).state == State.PENDING


def test_a_persons_choice_is_followed(org, rec, lead, olly):
    notifications.set_preferences(olly, {Kind.OWNERSHIP: Delivery.IMMEDIATE})

    workflow.assign_owner(rec, by=lead, owner=olly)

    assert Reminder.objects.get(recipient=olly).state == State.PENDING


def test_nobody_is_told_of_their_own_action(org, rec, lead, rita):
    workflow.assign_owner(rec, by=lead, owner=lead)  # the only lead takes it on
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 3, 31))
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 6, 30), reason="Slipped")
    evidence = workflow.add_evidence(rec, by=lead, kind="note", category="output", description="N", note="...")
    workflow.submit_for_assurance(rec, by=lead)

    assert list(Reminder.objects.values_list("recipient__username", "stage")) == [("rita", Stage.SUBMITTED)]
    assert evidence.pk


def test_only_active_people_of_the_organisation_are_told(org, rec, olly):
    UserFactory(username="gone", organisation=org, roles=[Role.REVIEWER], is_active=False)
    UserFactory(username="elsewhere", organisation=OrganisationFactory(slug="far"), roles=[Role.REVIEWER])
    here = UserFactory(username="here", organisation=org, roles=[Role.REVIEWER])
    rec.owner = olly
    rec.save()
    workflow.add_evidence(rec, by=olly, kind="note", category="output", description="N", note="...")

    workflow.submit_for_assurance(rec, by=olly)

    assert list(Reminder.objects.values_list("recipient", flat=True)) == [here.pk]


def test_a_person_deactivated_before_delivery_is_not_sent_it(transactional_db, org, rec, rita, olly):
    rec.owner = olly
    rec.save()
    workflow.add_evidence(rec, by=olly, kind="note", category="output", description="N", note="...")
    workflow.submit_for_assurance(rec, by=olly)
    rita.is_active = False
    rita.save()

    assert reminders.deliver().as_dict() == {**reminders.DeliveryReport().as_dict(), "cancelled": 1}
    assert Reminder.objects.get().state == State.CANCELLED


def test_the_ledger_holds_one_row_per_event_recipient_and_stage(org, rec, lead, olly):
    workflow.assign_owner(rec, by=lead, owner=olly)
    row = Reminder.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        notifications.notify(row.event, rec, old="nobody", new=olly)


def test_a_governance_lead_cannot_turn_off_escalations_and_nothing_is_saved(org, lead):
    with pytest.raises(InvalidInput, match="cannot turn off escalations"):
        notifications.set_preferences(lead, {Kind.OWNERSHIP: Delivery.IMMEDIATE, Kind.ESCALATIONS: Delivery.OFF})

    assert not NotificationPreference.objects.exists()
    assert notifications.preferences(lead)[Kind.ESCALATIONS] == Delivery.DAILY


def test_people_choose_only_among_the_kinds_they_receive(org, olly, rita):
    with pytest.raises(InvalidInput, match="do not receive"):
        notifications.set_preferences(olly, {Kind.AWAITING_ASSURANCE: Delivery.DAILY})
    with pytest.raises(InvalidInput, match="within minutes or in the daily digest"):
        notifications.set_preferences(rita, {Kind.AWAITING_ASSURANCE: Delivery.OFF})
    assert not NotificationPreference.objects.exists()


def test_the_every_minute_tick_sends_what_is_due_within_minutes_and_leaves_the_held(transactional_db, org, rec, lead):
    olly = UserFactory(username="olly", organisation=org, roles=[Role.OWNER])
    otto = UserFactory(username="otto", organisation=org, roles=[Role.OWNER])
    other = RecommendationFactory(finding__inspection__organisation=org)
    later = RecommendationFactory(finding__inspection__organisation=org)
    notifications.set_preferences(olly, {Kind.OWNERSHIP: Delivery.IMMEDIATE})
    workflow.assign_owner(rec, by=lead, owner=olly)
    workflow.assign_owner(other, by=lead, owner=olly)
    workflow.assign_owner(later, by=lead, owner=otto)  # otto: the default, the daily digest

    result = tasks.deliver_due_reminders()

    assert result["digests_sent"] == 1
    assert [m.to for m in mail.outbox] == [[olly.email]]
    assert "2 updates on your work" in mail.outbox[0].body  # both of olly's, in one email
    assert Reminder.objects.get(recipient=otto).state == State.HELD
    assert tasks.deliver_due_reminders()["digests_sent"] == 0


def test_news_that_is_no_longer_true_at_delivery_is_cancelled_not_sent(transactional_db, org, rec, lead, rita, olly):
    notifications.set_preferences(olly, {Kind.OWNERSHIP: Delivery.DAILY})
    workflow.assign_owner(rec, by=lead, owner=olly)
    workflow.add_evidence(rec, by=olly, kind="note", category="output", description="N", note="...")
    workflow.submit_for_assurance(rec, by=olly)
    workflow.reject(rec, by=rita, reason=SECRET_REASON)  # decided before rita's notice went out ...
    workflow.assign_owner(rec, by=lead, owner=lead)  # ... and olly's "now yours" is no longer true

    reminders.plan()  # the morning sweep releases the held ones
    reminders.deliver()

    states = dict(Reminder.objects.values_list("stage", "state"))
    assert states == {
        Stage.ASSIGNED: State.CANCELLED,
        Stage.SUBMITTED: State.CANCELLED,
        Stage.RETURNED: State.CANCELLED,  # olly no longer owns it
        Stage.UNASSIGNED: State.SENT,
    }
