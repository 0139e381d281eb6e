"""Delivery: what a digest says, what stops a reminder, and how failures are retried and recorded.

Emails go over real SMTP to aiosmtpd on loopback wherever the behaviour lives in the SMTP exchange.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from tests.factories import EvidenceFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import london
from tracker import reminders, workflow
from tracker.models import Reminder

State = Reminder.State
Stage = Reminder.Stage


@pytest.fixture
def three_recipients(org, olly, otto, lead):
    """Olly and Otto each have a review due soon; the lead has an unowned recommendation."""
    due = dt.date(2026, 5, 5)
    return {
        "olly": RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=due),
        "otto": RecommendationFactory(finding__inspection__organisation=org, owner=otto, next_review_due=due),
        "lead": RecommendationFactory(finding__inspection__organisation=org, owner=None, next_review_due=due),
    }


def test_a_digest_lists_reference_title_stage_due_date_and_an_absolute_link(settings, sweep_at, org, olly):
    settings.SITE_URL = "https://tracker.example.police.uk"
    rec = RecommendationFactory(
        finding__inspection__organisation=org,
        finding__reference="CC2",
        title="Respond to missing children promptly",
        owner=olly,
        next_review_due=dt.date(2026, 5, 5),
    )

    (message,) = sweep_at(london(2026, 5, 1))

    link = f"https://tracker.example.police.uk/recommendations/{rec.pk}/"
    html = message.alternatives[0].content
    assert message.to == [olly.email]
    assert message.subject == "Recommendation reviews: 1 item needs your attention"
    for body in (message.body, html):
        assert "CC2" in body
        assert "Respond to missing children promptly" in body
        assert "Due soon" in body
        assert "5 May 2026" in body
        assert link in body
    assert f'href="{link}"' in html
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"


def test_a_digest_carries_no_case_details(sweep_at, org, olly):
    rec = RecommendationFactory(
        finding__inspection__organisation=org,
        finding__summary="Child A was missing for nine days before anyone looked.",
        finding__quote="officers did not record the risk to Child A",
        outcome_measure="Audit of Child A's case file shows a timely response.",
        owner=olly,
        next_review_due=dt.date(2026, 5, 5),
    )
    with time_machine.travel(london(2026, 4, 20), tick=False):
        workflow.post_update(rec, by=olly, narrative="Spoke to Child A's social worker at the school.")
    EvidenceFactory(recommendation=rec, note="Strategy meeting minutes naming Child A.")

    (message,) = sweep_at(london(2026, 5, 1))

    everything = " ".join([message.subject, message.body, message.alternatives[0].content])
    assert rec.title in everything
    assert "Child A" not in everything


def test_completing_a_review_stops_reminders_for_the_old_date(sweep_at, org, olly):
    rec = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, review_interval_days=28, next_review_due=dt.date(2026, 5, 1)
    )
    assert len(sweep_at(london(2026, 5, 2))) == 1  # overdue
    with time_machine.travel(london(2026, 5, 9), tick=False):
        reminders.plan()  # the weekly repeat is planned but not yet delivered ...
        workflow.post_update(rec, by=olly, narrative="Reviewed with the board.", review_completed=True)
    rec.refresh_from_db()
    assert rec.next_review_due == dt.date(2026, 6, 6)

    assert sweep_at(london(2026, 5, 9, 7, 1)) == []  # ... and is cancelled, not sent
    assert sweep_at(london(2026, 5, 16)) == []  # no more weekly overdue reminders for 1 May
    (soon,) = sweep_at(london(2026, 5, 30))  # the new date gets its own due-soon reminder
    assert "6 June 2026" in soon.body
    assert list(Reminder.objects.filter(review_due=dt.date(2026, 5, 1)).values_list("occurrence", "state")) == [
        (1, State.CANCELLED),
        (0, State.SENT),
    ]


def test_a_new_owner_gets_the_later_reminders_and_the_old_owner_none(sweep_at, org, olly, otto, lead):
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 5))
    with time_machine.travel(london(2026, 4, 28), tick=False):
        reminders.plan()  # due soon, to olly, planned ...
        workflow.assign_owner(rec, by=lead, owner=otto, reason="Olly moved team")

    sent = sweep_at(london(2026, 4, 28, 7, 1))  # ... but olly no longer owns it

    # Olly hears only that it is no longer theirs; Otto gets its review and the news that it is theirs.
    by_address = {m.to[0]: m for m in sent}
    assert sorted(by_address) == [olly.email, otto.email]
    assert "Due soon" not in by_address[olly.email].body
    assert "Due soon" in by_address[otto.email].body
    assert Reminder.objects.get(recipient=olly, event=None).state == State.CANCELLED
    assert Reminder.objects.get(recipient=olly, stage=Stage.UNASSIGNED).state == State.SENT
    assert set(Reminder.objects.filter(recipient=otto).values_list("stage", "state")) == {
        (Stage.DUE_SOON, State.SENT),
        (Stage.ASSIGNED, State.SENT),
    }


@pytest.mark.integration
def test_each_digest_goes_over_one_smtp_connection_per_batch(smtp, sweep_at, three_recipients):
    sweep_at(london(2026, 5, 1))

    assert sorted(r.rcpt_tos[0] for r in smtp.handler.received) == [
        "lead@example.org",
        "olly@example.org",
        "otto@example.org",
    ]
    assert len({received.message["Message-ID"] for received in smtp.handler.received}) == 3
    assert Reminder.objects.filter(state=State.SENT).count() == 3


@pytest.mark.integration
def test_a_recipient_refused_with_550_fails_alone_while_the_others_are_delivered(smtp, sweep_at, three_recipients):
    smtp.handler.refuse["otto@example.org"] = "550 5.1.1 <otto@example.org>: mailbox unavailable"

    sweep_at(london(2026, 5, 1))

    assert sorted(r.rcpt_tos[0] for r in smtp.handler.received) == ["lead@example.org", "olly@example.org"]
    failed = Reminder.objects.get(recipient__username="otto")
    assert failed.state == State.FAILED
    assert "550" in failed.last_error
    assert set(Reminder.objects.exclude(pk=failed.pk).values_list("state", flat=True)) == {State.SENT}
    sweep_at(london(2026, 5, 2))  # a permanent failure is not retried by itself
    assert len(smtp.handler.received) == 2


@pytest.mark.integration
def test_a_recipient_without_an_address_is_marked_failed_and_the_rest_delivered(smtp, sweep_at, org, olly):
    silent = UserFactory(username="noemail", email="", organisation=org)
    RecommendationFactory(finding__inspection__organisation=org, owner=silent, next_review_due=dt.date(2026, 5, 5))
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 5))

    sweep_at(london(2026, 5, 1))

    assert [r.rcpt_tos for r in smtp.handler.received] == [[olly.email]]
    row = Reminder.objects.get(recipient=silent)
    assert (row.state, row.last_error) == (State.FAILED, "no email address")


@pytest.mark.integration
def test_while_smtp_refuses_connections_nothing_is_marked_sent_and_it_backs_off(smtp, sweep_at, three_recipients):
    smtp.stop()

    sweep_at(london(2026, 5, 1))
    first = {r.pk: r for r in Reminder.objects.all()}
    assert {r.state for r in first.values()} == {State.PENDING}
    assert {r.attempts for r in first.values()} == {1}
    assert all("Connection refused" in r.last_error or "ConnectionRefused" in r.last_error for r in first.values())
    waits = [(r.next_attempt_at - london(2026, 5, 1)).total_seconds() for r in first.values()]
    assert all(30 <= wait <= 60 for wait in waits)  # base 60 s, with jitter in [half, full]

    with time_machine.travel(london(2026, 5, 1, 7, 0) + dt.timedelta(seconds=29), tick=False):
        assert reminders.deliver().as_dict()["retrying"] == 0  # too early: nothing is even tried
    with time_machine.travel(london(2026, 5, 1, 7, 1, 1), tick=False):
        assert reminders.deliver().as_dict()["retrying"] == 3  # second attempt, still refused
    second = Reminder.objects.all()
    assert {r.attempts for r in second} == {2}
    waits = [(r.next_attempt_at - london(2026, 5, 1, 7, 1, 1)).total_seconds() for r in second]
    assert all(60 <= wait <= 120 for wait in waits)  # doubled

    smtp.start()
    with time_machine.travel(london(2026, 5, 1, 7, 4), tick=False):
        assert reminders.deliver().as_dict()["digests_sent"] == 3
        assert reminders.deliver().as_dict()["digests_sent"] == 0
    assert sorted(r.rcpt_tos[0] for r in smtp.handler.received) == [
        "lead@example.org",
        "olly@example.org",
        "otto@example.org",
    ]
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}


@pytest.mark.integration
def test_after_the_last_attempt_a_reminder_is_dead_and_the_lead_can_retry_it(settings, smtp, sweep_at, olly, rec):
    settings.REMINDER_MAX_ATTEMPTS = 2
    rec.next_review_due = dt.date(2026, 5, 5)
    rec.save()
    smtp.stop()
    sweep_at(london(2026, 5, 1))
    with time_machine.travel(london(2026, 5, 1, 9), tick=False):
        reminders.deliver()
    row = Reminder.objects.get()
    assert (row.state, row.attempts) == (State.DEAD, 2)
    with time_machine.travel(london(2026, 5, 2, 9), tick=False):
        assert reminders.deliver().as_dict()["retrying"] == 0  # dead rows are not picked up again

    smtp.start()
    with time_machine.travel(london(2026, 5, 2, 9), tick=False):
        assert reminders.retry_now([row.pk]) == 1
        reminders.deliver()
    row.refresh_from_db()
    assert row.state == State.SENT
    assert [r.rcpt_tos for r in smtp.handler.received] == [[olly.email]]


@pytest.mark.integration
def test_a_421_reply_is_temporary_and_the_digest_is_retried(smtp, sweep_at, olly, rec):
    rec.next_review_due = dt.date(2026, 5, 5)
    rec.save()
    smtp.handler.refuse[olly.email] = "421 4.3.2 Try again later"
    sweep_at(london(2026, 5, 1))
    row = Reminder.objects.get()
    assert (row.state, row.attempts) == (State.PENDING, 1)
    assert row.last_error == "olly@example.org: 421 4.3.2 Try again later"

    del smtp.handler.refuse[olly.email]
    with time_machine.travel(london(2026, 5, 1, 8), tick=False):
        reminders.deliver()
    row.refresh_from_db()
    assert row.state == State.SENT
    assert len(smtp.handler.received) == 1


def test_two_claims_never_share_a_row(org, olly, otto):
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 5))
    RecommendationFactory(finding__inspection__organisation=org, owner=otto, next_review_due=dt.date(2026, 5, 5))
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
        first_token, first = reminders.claim(limit_recipients=1)
        second_token, second = reminders.claim(limit_recipients=10)
        _third_token, third = reminders.claim(limit_recipients=10)

    assert len(first) == len(second) == 1
    assert {r.pk for r in first}.isdisjoint({r.pk for r in second})
    assert third == []
    assert first_token != second_token


def test_a_claim_whose_lease_ran_out_can_be_taken_over(settings, org, olly):
    settings.REMINDER_LEASE_SECONDS = 60
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 5))
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
        _, taken = reminders.claim(limit_recipients=10)
    with time_machine.travel(london(2026, 5, 1, 7, 0, 59), tick=False):
        assert reminders.claim(limit_recipients=10)[1] == []  # still leased
    with time_machine.travel(london(2026, 5, 1, 7, 1, 1), tick=False):
        _, again = reminders.claim(limit_recipients=10)  # the first worker is presumed dead
    assert [r.pk for r in again] == [r.pk for r in taken]
    assert again[0].attempts == 2


def test_the_command_sends_synchronously_and_says_what_went_to_whom(transactional_db, capsys, org, olly, lead):
    rec = RecommendationFactory(
        finding__inspection__organisation=org,
        finding__reference="AFI3",
        owner=olly,
        next_review_due=dt.date(2026, 5, 5),
    )
    with time_machine.travel(london(2026, 5, 1), tick=False):
        call_command("send_review_reminders", "--dry-run")
        dry = capsys.readouterr().out
        assert mail.outbox == []
        assert not Reminder.objects.exists()
        call_command("send_review_reminders")
        real = capsys.readouterr().out
        call_command("send_review_reminders")
        again = capsys.readouterr().out

    assert f"Would send a digest of 1 item(s) to {olly.email}" in dry
    assert "AFI3 due soon (review due 2026-05-05)" in dry
    assert f"Sent a digest of 1 item(s) to {olly.email}" in real
    assert "AFI3 due soon (review due 2026-05-05)" in real
    assert "Nothing to send." in again
    assert [m.to for m in mail.outbox] == [[olly.email]]
    assert rec.get_absolute_url() in mail.outbox[0].body


def test_sent_at_and_attempts_are_recorded(sweep_at, rec):
    rec.next_review_due = dt.date(2026, 5, 5)
    rec.save()
    sweep_at(london(2026, 5, 1))
    row = Reminder.objects.get()
    assert row.sent_at == london(2026, 5, 1)
    assert row.attempts == 1
    assert row.lease_until is None
    assert row.sent_at <= timezone.now()


@pytest.mark.integration
def test_an_unreachable_server_stops_the_run_instead_of_trying_every_batch(settings, smtp, sweep_at, three_recipients):
    settings.REMINDER_BATCH_RECIPIENTS = 1
    smtp.stop()

    sweep_at(london(2026, 5, 1))

    attempts = sorted(Reminder.objects.values_list("attempts", flat=True))
    assert attempts == [0, 0, 1]  # one recipient tried; the others wait for the next run untouched
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.PENDING}


def test_after_a_long_outage_only_the_latest_weekly_repeat_is_sent(transactional_db, org, olly):
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 1))
    with time_machine.travel(london(2026, 5, 2), tick=False):
        reminders.plan()
    with time_machine.travel(london(2026, 5, 9), tick=False):
        reminders.plan()
        reminders.deliver()

    (message,) = mail.outbox
    assert message.body.count(rec.get_absolute_url()) == 1
    assert dict(Reminder.objects.values_list("occurrence", "state")) == {0: State.CANCELLED, 1: State.SENT}


def test_a_reminder_whose_worker_dies_on_every_attempt_ends_up_dead_not_in_a_loop(
    transactional_db, settings, olly, rec
):
    settings.REMINDER_MAX_ATTEMPTS = 3
    settings.REMINDER_LEASE_SECONDS = 60
    rec.next_review_due = dt.date(2026, 5, 5)
    rec.save()
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
    for minute in range(3):  # three claims, each abandoned as if the worker had been killed
        with time_machine.travel(london(2026, 5, 1, 8, minute * 2), tick=False):
            assert len(reminders.claim(limit_recipients=10)[1]) == 1

    with time_machine.travel(london(2026, 5, 1, 9), tick=False):
        report = reminders.deliver()

    row = Reminder.objects.get()
    assert (row.state, row.attempts) == (State.DEAD, 4)
    assert report.as_dict()["failed"] == 1
    assert mail.outbox == []
