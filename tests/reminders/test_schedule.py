"""The Celery set-up: safe timing, JSON, the beat schedule in the database, enqueueing on commit."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings as live_settings
from django.core.management import call_command
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.celery import app as celery_app
from config.celery import timing_problems
from tests.factories import RecommendationFactory
from tracker import reminders, tasks
from tracker.management.commands import setup_schedule
from tracker.models import Reminder


def test_task_time_limit_is_shorter_than_the_lease_which_is_shorter_than_the_visibility_timeout():
    # Read from the real settings and the real Celery app, not from values set by the test.
    time_limit = celery_app.conf.task_time_limit
    lease = live_settings.REMINDER_LEASE_SECONDS
    visibility = celery_app.conf.broker_transport_options["visibility_timeout"]

    assert time_limit == live_settings.CELERY_TASK_TIME_LIMIT
    assert celery_app.conf.task_soft_time_limit < time_limit < lease < visibility
    assert timing_problems() == []


def test_files_get_their_own_longer_limit_still_shorter_than_the_visibility_timeout(settings):
    from tracker.tasks import build_export

    visibility = celery_app.conf.broker_transport_options["visibility_timeout"]
    assert build_export.soft_time_limit < build_export.time_limit == live_settings.EXPORT_TASK_TIME_LIMIT < visibility
    assert build_export.time_limit > celery_app.conf.task_time_limit
    settings.EXPORT_TASK_TIME_LIMIT = visibility
    assert any("EXPORT_TASK_TIME_LIMIT" in problem for problem in timing_problems())


def test_the_timing_check_refuses_a_lease_no_longer_than_the_time_limit(settings):
    settings.REMINDER_LEASE_SECONDS = celery_app.conf.task_time_limit

    assert any("REMINDER_LEASE_SECONDS" in problem for problem in timing_problems())


def test_tasks_are_json_acknowledged_late_and_requeued_if_their_worker_dies():
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    for task in (tasks.run_review_sweep, tasks.deliver_due_reminders):
        assert task.name in celery_app.tasks
        assert json.dumps(task.s().args) == "[]"  # nothing but ids (here: nothing at all) crosses the broker


def test_setup_schedule_creates_the_daily_sweep_at_seven_london_time_once(db):
    call_command("setup_schedule")
    call_command("setup_schedule")

    sweep = PeriodicTask.objects.get(name=setup_schedule.SWEEP)
    assert sweep.task == "tracker.tasks.run_review_sweep"
    assert (sweep.crontab.minute, sweep.crontab.hour, str(sweep.crontab.timezone)) == ("0", "7", "Europe/London")
    assert sweep.enabled
    assert PeriodicTask.objects.filter(task="tracker.tasks.run_review_sweep").count() == 1
    assert PeriodicTask.objects.filter(task="tracker.tasks.deliver_due_reminders").count() == 1


def test_each_beat_entry_expires_shortly_before_its_next_run(db):
    call_command("setup_schedule")

    sweep = PeriodicTask.objects.get(name=setup_schedule.SWEEP)
    tick = PeriodicTask.objects.get(name=setup_schedule.DELIVERY)
    day = 24 * 3600
    minute = tick.interval.every * 60
    assert day * 0.9 <= sweep.expire_seconds < day
    assert minute * 0.75 <= tick.expire_seconds < minute


def test_setup_schedule_never_overwrites_the_governance_leads_edits(db):
    call_command("setup_schedule")
    sweep = PeriodicTask.objects.get(name=setup_schedule.SWEEP)
    sweep.crontab = CrontabSchedule.objects.create(minute="30", hour="6", timezone="Europe/London")
    sweep.enabled = False
    sweep.save()

    call_command("setup_schedule", "--run-now")

    sweep.refresh_from_db()
    assert (sweep.crontab.hour, sweep.crontab.minute, sweep.enabled) == ("6", "30", False)
    start_up = PeriodicTask.objects.get(name=setup_schedule.START_UP)
    assert start_up.one_off and start_up.enabled and start_up.clocked is not None


def test_the_schedule_is_the_operators_to_edit_not_a_governance_leads(client, lead):
    """The sweep runs for every organisation, so one organisation's lead must not be able to stop it."""
    from tests.factories import UserFactory

    call_command("loaddata", "groups", verbosity=0)
    call_command("setup_schedule")
    sweep = PeriodicTask.objects.get(name=setup_schedule.SWEEP)
    url = f"/admin/django_celery_beat/periodictask/{sweep.pk}/change/"

    client.force_login(lead)
    assert client.get(url).status_code == 403
    assert client.post(url, {"enabled": ""}).status_code == 403
    assert not lead.has_perm("django_celery_beat.change_periodictask")
    sweep.refresh_from_db()
    assert sweep.enabled

    operator = UserFactory(username="operator", organisation=None, is_staff=True, is_superuser=True)
    client.force_login(operator)
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="crontab"' in page.content


@pytest.mark.integration
def test_a_rolled_back_transaction_enqueues_nothing(transactional_db, broker, org, olly):
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly)
    row = Reminder.objects.create(
        recommendation=rec, recipient=olly, stage="due_soon", review_due=dt.date(2026, 5, 5), state="failed"
    )

    with pytest.raises(RuntimeError), transaction.atomic():
        assert reminders.retry_now([row.pk]) == 1
        raise RuntimeError("something later in the request failed")

    assert broker.llen("celery") == 0
    row.refresh_from_db()
    assert row.state == "failed"

    reminders.retry_now([row.pk])  # committed: exactly one delivery task reaches the broker

    assert broker.llen("celery") == 1
    body = json.loads(broker.lindex("celery", 0))
    assert body["headers"]["task"] == "tracker.tasks.deliver_due_reminders"
