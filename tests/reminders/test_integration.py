"""The real thing: Redis, Celery worker and beat processes, and an SMTP server, all on loopback.

Each test prepares a file SQLite database (``worker_db``) with factories; the worker and beat
processes use the same file. These tests wait on real processes, so they poll with a timeout.
"""

from __future__ import annotations

import ast
import collections
import datetime as dt
import os
import re
import signal
import subprocess
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import BUSY_DIGESTS, BUSY_REMINDERS, busy_organisation, kill_worker_tree, wait_for
from tracker import tasks
from tracker.models import Reminder
from tracker.permissions import Role

pytestmark = pytest.mark.integration

State = Reminder.State


def _people(owners: int = 2):
    org = OrganisationFactory(slug="cleveland", name="Cleveland Police")
    lead = UserFactory(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD])
    return org, lead, [UserFactory(username=f"owner{n}", organisation=org, roles=[Role.OWNER]) for n in range(owners)]


def _all_settled() -> bool:
    return not Reminder.objects.filter(state__in=[State.PENDING, State.SENDING]).exists()


def test_the_beat_sweep_runs_on_a_worker_and_the_digest_arrives_over_smtp(services, smtp):
    org, lead, (olly, otto) = _people()
    today = timezone.localdate()
    soon = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, next_review_due=today + dt.timedelta(days=3)
    )
    late = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, next_review_due=today - dt.timedelta(days=2)
    )
    nobody = RecommendationFactory(finding__inspection__organisation=org, owner=None)
    RecommendationFactory(finding__inspection__organisation=org, owner=otto)  # not due: no email for otto
    call_command("setup_schedule", "--run-now")

    services.worker("--pool=prefork", "--concurrency=1")
    services.beat()
    wait_for(lambda: len(smtp.handler.received) >= 2 and _all_settled(), 40, "two digests over SMTP")

    by_recipient = {received.rcpt_tos[0]: received for received in smtp.handler.received}
    assert sorted(by_recipient) == [lead.email, olly.email]
    site = services.env()["SITE_URL"]
    assert by_recipient[olly.email].items() == {
        (olly.email, f"{site}/recommendations/{soon.pk}/", "Due soon"),
        (olly.email, f"{site}/recommendations/{late.pk}/", "Overdue"),
    }
    assert by_recipient[lead.email].items() == {(lead.email, f"{site}/recommendations/{nobody.pk}/", "No owner")}
    assert f'href="{site}/recommendations/{soon.pk}/"' in by_recipient[olly.email].html
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}


def test_two_sweeps_running_at_once_send_each_reminder_once(services, smtp, broker):
    busy_organisation()
    services.extra_env["REMINDER_BATCH_RECIPIENTS"] = "2"  # many small batches, so the two really interleave
    _, log = services.worker("--pool=prefork", "--concurrency=2")

    tasks.run_review_sweep.delay()
    tasks.run_review_sweep.delay()
    wait_for(lambda: log.read_text().count("succeeded in") == 2, 60, "both sweeps to finish")

    items = smtp.handler.items()
    expected = {
        (r.recipient.email, f"{services.env()['SITE_URL']}{r.recommendation.get_absolute_url()}", r.get_stage_display())
        for r in Reminder.objects.select_related("recipient", "recommendation")
    }
    duplicates = [item for item, count in collections.Counter(items).items() if count > 1]
    assert duplicates == []
    assert set(items) == expected
    assert len(expected) == BUSY_REMINDERS  # per owner: due soon, overdue, overdue, escalation; 3 unowned
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    results = [ast.literal_eval(found) for found in re.findall(r"succeeded in [\d.]+s: (\{.*\})", log.read_text())]
    assert (
        sum(result["planned"] for result in results) == BUSY_REMINDERS
    )  # the unique constraint kept out the second copy
    assert sum(result["digests_sent"] for result in results) == BUSY_DIGESTS  # 12 owners and the lead, once each


def _stalled_on_the_second_digest(services, smtp):
    """Four owners due, a prefork worker sending their digests, stalled mid-send on the second."""
    org, _lead, owners = _people(owners=4)
    today = timezone.localdate()
    for owner in owners:
        RecommendationFactory(
            finding__inspection__organisation=org, owner=owner, next_review_due=today + dt.timedelta(days=1)
        )
    # Short, correctly nested timings so the test need not wait an hour for the broker to redeliver.
    services.extra_env.update(
        CELERY_TASK_TIME_LIMIT="4",
        CELERY_TASK_SOFT_TIME_LIMIT="3",
        REMINDER_LEASE_SECONDS="5",
        CELERY_VISIBILITY_TIMEOUT="6",
        EXPORT_TASK_TIME_LIMIT="5",  # the files' own limit must also be under the visibility timeout
        EMAIL_TIMEOUT="2",
        REMINDER_SEND_TIMEOUTS="2",  # a send may take 4s of the 5s lease
    )
    smtp.handler.stall_after = 1  # the second digest is taken in, but its "250 OK" never comes back
    worker, _ = services.worker("--pool=prefork", "--concurrency=1")
    sent_at = time.monotonic()
    tasks.run_review_sweep.delay()
    assert smtp.handler.stalled.wait(30), "the worker never reached its second digest"
    return owners, worker, sent_at


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_one_digest(services, smtp, broker):
    owners, worker, sent_at = _stalled_on_the_second_digest(services, smtp)
    kill_worker_tree(worker)
    smtp.handler.stall_after = None
    smtp.handler.release.set()
    assert sorted(Reminder.objects.values_list("state", flat=True)) == [State.SENDING] * 3 + [State.SENT]

    # Redis hands the unacknowledged task to the next worker once the visibility timeout has passed;
    # by then the dead worker's lease has expired too, so its rows can be claimed again.
    wait_for(lambda: time.monotonic() - sent_at > 7, 10, "the visibility timeout")
    _, log = services.worker("--pool=prefork", "--concurrency=1")
    wait_for(_all_settled, 30, "the restarted worker to deliver the rest")

    assert "tracker.tasks.run_review_sweep" in log.read_text()  # the very task that was killed
    delivered = collections.Counter(received.rcpt_tos[0] for received in smtp.handler.received)
    assert set(delivered) == {owner.email for owner in owners}  # nothing lost
    assert sum(delivered.values()) - len(delivered) <= 1  # at most one digest repeated
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}


def test_a_killed_pool_process_loses_nothing_and_repeats_at_most_one_digest(services, smtp, broker):
    """Only the prefork child dies (an out-of-memory kill, say); its parent lives on and starts another."""
    from pathlib import Path

    owners, worker, _ = _stalled_on_the_second_digest(services, smtp)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert children, "a prefork worker has a pool process"
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    smtp.handler.stall_after = None
    smtp.handler.release.set()
    assert worker.poll() is None  # the worker itself lives on

    # The dead child's rows are leased for 5 s; after that the next delivery tick takes them again.
    wait_for(lambda: not Reminder.objects.filter(state=State.SENDING, lease_until__gt=timezone.now()).exists(), 15,
             "the dead pool process's lease to run out")  # fmt: skip
    tasks.deliver_due_reminders.delay()
    wait_for(_all_settled, 30, "the worker's new pool process to deliver the rest")

    delivered = collections.Counter(received.rcpt_tos[0] for received in smtp.handler.received)
    assert set(delivered) == {owner.email for owner in owners}  # nothing lost
    assert sum(delivered.values()) - len(delivered) <= 1  # at most the one digest in flight repeated
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    assert worker.poll() is None


def test_a_worker_refuses_to_start_when_the_lease_is_not_longer_than_the_task_time_limit(services):
    services.extra_env.update(CELERY_TASK_TIME_LIMIT="60", REMINDER_LEASE_SECONDS="60")

    process, log = services.worker("--pool=prefork", ready=False)

    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker started with unsafe timing")
    assert process.returncode != 0
    assert "REMINDER_LEASE_SECONDS (60s)" in log.read_text()


def test_only_one_beat_runs_a_second_one_exits(services, redis):
    call_command("setup_schedule")
    first, _ = services.beat()
    wait_for(lambda: redis.get("tracker:beat-lock") is not None, 30, "the first beat to take the lock")

    second, second_log = services.beat()

    try:
        second.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("a second beat started beside the first")
    assert second.returncode != 0
    assert "another beat" in second_log.read_text()
    assert first.poll() is None
    assert redis.get("tracker:beat-lock").decode().endswith(f":{first.pid}")
    first.send_signal(signal.SIGTERM)
    first.wait(10)
    assert redis.get("tracker:beat-lock") is None  # let go on a clean stop, so a successor can start at once
