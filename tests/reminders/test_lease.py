"""A lease is held, not assumed: renewed before each digest, checked when marking it sent, bounded by a
deadline; no sending inside a transaction; workers only on a pool that enforces time limits.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import re
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from tests.factories import RecommendationFactory, UserFactory
from tests.reminders.conftest import SmtpHandler, london, wait_for
from tracker import reminders, tasks
from tracker.models import Reminder
from tracker.permissions import Role

State = Reminder.State


def _due_to(org, *owners):
    for owner in owners:
        RecommendationFactory(finding__inspection__organisation=org, owner=owner, next_review_due=dt.date(2026, 5, 5))


# --- renewal and the sent mark, in process ---------------------------------------------------------


def test_a_worker_whose_lease_was_taken_over_sends_nothing_for_those_rows(transactional_db, settings, org, olly, otto):
    settings.REMINDER_LEASE_SECONDS = 60
    _due_to(org, olly, otto)
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
        slow_token, slow_rows = reminders.claim(limit_recipients=10)
    with time_machine.travel(london(2026, 5, 1, 7, 1, 1), tick=False):
        new_token, _ = reminders.claim(limit_recipients=10)  # the slow worker's lease ran out
        report = reminders._deliver_batch(slow_token, slow_rows, dt.date(2026, 5, 1))

    assert mail.outbox == []
    assert report.sent == []
    assert set(Reminder.objects.values_list("state", "lease_token")) == {(State.SENDING, new_token)}


class _TakenOverMidSend(EmailBackend):
    """Hands the message over, but only after another worker has claimed the rows (a send that outran its lease)."""

    def send_messages(self, messages):
        Reminder.objects.update(lease_token="another-worker")
        return super().send_messages(messages)


def test_a_digest_whose_rows_were_taken_over_mid_send_is_not_marked_sent_and_is_logged(
    transactional_db, settings, caplog, org, olly
):
    settings.EMAIL_BACKEND = f"{__name__}._TakenOverMidSend"
    _due_to(org, olly)

    with time_machine.travel(london(2026, 5, 1), tick=False), caplog.at_level(logging.ERROR, "tracker.reminders"):
        reminders.run_sweep()

    assert Reminder.objects.get().state == State.SENDING  # the other worker's to finish
    assert f"Sent user {olly.pk} a digest of 1 reminder(s) but held only 0" in caplog.text


def test_past_the_deadline_no_digest_is_started_and_the_rows_are_due_again_at_once(transactional_db, org, olly, otto):
    _due_to(org, olly, otto)
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
        token, rows = reminders.claim(limit_recipients=10)
        report = reminders._deliver_batch(token, rows, dt.date(2026, 5, 1), deadline=time.monotonic())

        assert mail.outbox == []
        assert report.deferred == 2
        assert set(Reminder.objects.values_list("state", "attempts", "lease_until")) == {(State.PENDING, 0, None)}
        assert reminders.deliver().as_dict()["digests_sent"] == 2  # the next run, straight away


def test_the_command_gives_delivery_a_deadline_of_half_the_lease_by_default(transactional_db, settings, monkeypatch):
    settings.REMINDER_LEASE_SECONDS = 600
    deadlines = []
    monkeypatch.setattr(reminders, "deliver", lambda deadline: deadlines.append(deadline) or reminders.DeliveryReport())

    call_command("send_review_reminders")
    call_command("send_review_reminders", "--max-seconds", "30")

    now = time.monotonic()
    assert now + 290 < deadlines[0] <= now + 300
    assert now + 20 < deadlines[1] <= now + 30


def test_the_command_refuses_a_max_seconds_outside_the_lease(transactional_db, settings):
    settings.REMINDER_LEASE_SECONDS = 600

    with pytest.raises(CommandError, match="--max-seconds must be from 1 to 599"):
        call_command("send_review_reminders", "--max-seconds", "600")
    with pytest.raises(CommandError, match="--max-seconds must be from 1 to 599"):
        call_command("send_review_reminders", "--max-seconds", "0")


def test_the_command_refuses_a_mail_timeout_the_lease_cannot_cover(transactional_db, settings):
    settings.REMINDER_LEASE_SECONDS = 100
    settings.EMAIL_TIMEOUT = 10  # x REMINDER_SEND_TIMEOUTS (10) = the whole lease

    with pytest.raises(CommandError, match=r"EMAIL_TIMEOUT \(10s\) x 10 must be less than REMINDER_LEASE_SECONDS"):
        call_command("send_review_reminders")


def test_the_default_timing_lets_a_renewed_lease_outlast_a_send(settings):
    assert reminders.timing_problems() == []
    settings.EMAIL_TIMEOUT = settings.REMINDER_LEASE_SECONDS // settings.REMINDER_SEND_TIMEOUTS
    assert reminders.timing_problems() != []


# --- never inside a transaction -------------------------------------------------------------------


def test_delivery_refuses_to_run_inside_a_transaction_and_sends_nothing(transactional_db, org, olly):
    _due_to(org, olly)
    with time_machine.travel(london(2026, 5, 1), tick=False):
        reminders.plan()
        with pytest.raises(RuntimeError, match="never sent inside a transaction"), transaction.atomic():
            reminders.deliver()
        with pytest.raises(RuntimeError, match="never sent inside a transaction"), transaction.atomic():
            reminders.run_sweep()

        assert mail.outbox == []
        assert Reminder.objects.get().state == State.PENDING
        assert reminders.deliver().as_dict()["digests_sent"] == 1  # outside one, it sends


# --- the worker pool ------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_a_worker_refuses_a_pool_that_ignores_time_limits(services, pool):
    process, log = services.worker(f"--pool={pool}", ready=False)

    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a worker started on the {pool} pool")
    assert process.returncode != 0
    assert "does not enforce CELERY_TASK_TIME_LIMIT" in log.read_text()


@pytest.mark.integration
def test_a_worker_refuses_a_mail_timeout_its_lease_cannot_cover(services):
    services.extra_env.update(EMAIL_TIMEOUT="60")  # x 10 = the whole default lease (600s)

    process, log = services.worker("--pool=prefork", "--concurrency=1", ready=False)

    process.wait(30)
    assert process.returncode != 0
    assert "EMAIL_TIMEOUT (60s) x 10 must be less than REMINDER_LEASE_SECONDS (600s)" in log.read_text()


# --- the real thing: a slow SMTP server, a short lease, two senders ------------------------------


@dataclass
class _SlowSmtpHandler(SmtpHandler):
    seconds_per_message: float = 0.2

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.seconds_per_message)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.integration
def test_two_senders_on_a_slow_server_with_a_short_lease_send_each_digest_exactly_once(
    services, smtp, broker, settings
):
    # 48 digests at 0.2s each take ~10s in one batch; the lease is 5s, so without renewal the other
    # sender claims the rows of the batch that runs past it. Here the long runner is deliver() in this
    # process (as the command) and the other is a real worker, fed a delivery task whenever its queue is empty.
    smtp.stop()
    smtp.handler = _SlowSmtpHandler()
    smtp.start()
    owners = [UserFactory(username=f"owner{n}", roles=[Role.OWNER]) for n in range(48)]
    for owner in owners:
        RecommendationFactory(
            finding__inspection__organisation=owner.organisation,
            owner=owner,
            next_review_due=timezone.localdate() + dt.timedelta(days=2),
        )
    reminders.plan()
    settings.REMINDER_LEASE_SECONDS = 5
    services.extra_env.update(
        REMINDER_LEASE_SECONDS="5",
        CELERY_TASK_TIME_LIMIT="4",
        CELERY_TASK_SOFT_TIME_LIMIT="3",  # each task starts no digest after 1.5s, so none is cut short
        CELERY_VISIBILITY_TIMEOUT="6",
        EXPORT_TASK_TIME_LIMIT="5",  # the files' own limit must also be under the visibility timeout
        EMAIL_TIMEOUT="2",
        REMINDER_SEND_TIMEOUTS="2",
        REMINDER_BATCH_RECIPIENTS="2",
    )
    _, log = services.worker("--pool=prefork", "--concurrency=1")
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:
        while feeding.is_set():
            if broker.llen("celery") == 0:
                tasks.deliver_due_reminders.delay()
            time.sleep(0.3)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        here = reminders.deliver()  # no deadline: runs until nothing is claimable
        wait_for(
            lambda: not Reminder.objects.filter(state__in=[State.PENDING, State.SENDING]).exists(),
            60,
            "every reminder to be sent",
        )
    finally:
        feeding.clear()
        feeder.join(5)

    per_recipient = collections.Counter(received.rcpt_tos[0] for received in smtp.handler.received)
    assert {address: count for address, count in per_recipient.items() if count > 1} == {}
    assert set(per_recipient) == {owner.email for owner in owners}
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    # The batch outlasted its 5 s lease twice over, but its holder renewed it as it went: the worker,
    # asking every 0.3 s, never found a row to take. (Without renewal it takes rows over and sends again.)
    assert len(here.sent) == len(owners)
    assert re.search(r"'digests_sent': [1-9]", log.read_text()) is None
