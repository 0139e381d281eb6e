"""A missed daily sweep is made good by the every-minute delivery tick, and only once.

Beat can miss the 07:00 sweep (down at the time: django-celery-beat loads a crontab entry only near
its hour, so a beat back at 10:00 never runs it; or the queued sweep lost with Redis's data). The
tick runs it once the time has passed by a few minutes with no sweep recorded for the London date.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import LONDON, london, wait_for
from tracker import schedule, tasks
from tracker.models import Reminder, SweepRun
from tracker.permissions import Role


@pytest.fixture
def daily(db):
    """The schedule as setup_schedule makes it: a sweep at 07:00 Europe/London."""
    call_command("setup_schedule")
    return PeriodicTask.objects.get(name=schedule.SWEEP)


@pytest.fixture
def unowned(org, lead):
    """A recommendation with no owner: the lead is reminded of it on every sweep's day."""
    return RecommendationFactory(finding__inspection__organisation=org, owner=None)


def _ticks_done(log) -> int:
    return len(re.findall(r"deliver_due_reminders\[[\w-]+\] succeeded", log.read_text()))


def overdue_at(when: dt.datetime) -> bool:
    with time_machine.travel(when, tick=False):
        return schedule.sweep_overdue()


# --- the decision, with time frozen -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (6, 0, False),  # before the sweep's time
        (7, 3, False),  # beat's own sweep may still be planning
        (7, 6, True),
        (10, 0, True),  # beat came back at 10:00, outside its loading window for 07:00
        (23, 59, True),
    ],
)
def test_the_tick_runs_the_sweep_only_once_its_time_has_passed_by_the_grace(daily, hour, minute, expected):
    assert overdue_at(london(2026, 1, 15, hour, minute)) is expected


def test_a_day_already_swept_is_not_swept_again(daily):
    with time_machine.travel(london(2026, 1, 15, 7, 0, 30), tick=False):
        schedule.sweep()

    assert overdue_at(london(2026, 1, 15, 10)) is False
    assert overdue_at(london(2026, 1, 16, 10)) is True  # yesterday's sweep is not today's


def test_a_disabled_sweep_is_not_run_by_the_tick(daily):
    daily.enabled = False
    daily.save()

    assert overdue_at(london(2026, 1, 15, 10)) is False


def test_the_operators_time_and_days_are_followed(daily):
    daily.crontab = CrontabSchedule.objects.create(minute="30", hour="9", day_of_week="1-5", timezone="Europe/London")
    daily.save()

    assert overdue_at(london(2026, 1, 15, 9, 34)) is False  # a Thursday
    assert overdue_at(london(2026, 1, 15, 9, 36)) is True
    assert overdue_at(london(2026, 1, 17, 12)) is False  # Saturday: no sweep is due
    with time_machine.travel(london(2026, 1, 17, 12), tick=False):
        assert schedule.scheduled_today() is None
    with time_machine.travel(london(2026, 1, 16, 8), tick=False):
        assert schedule.scheduled_today() == london(2026, 1, 16, 9, 30)


def test_in_summer_the_london_date_and_time_decide_not_utc(daily):
    # 06:30 UTC on 15 June is 07:30 BST: past the time.
    assert overdue_at(dt.datetime(2026, 6, 15, 6, 30, tzinfo=dt.UTC)) is True
    # 06:03 BST is 05:03 UTC: before it.
    assert overdue_at(dt.datetime(2026, 6, 15, 5, 3, tzinfo=dt.UTC)) is False
    # 23:30 UTC on 14 June is already 15 June in London: 14 June's sweep does not count for it...
    with time_machine.travel(dt.datetime(2026, 6, 14, 6, 10, tzinfo=dt.UTC), tick=False):
        schedule.sweep()
    assert overdue_at(dt.datetime(2026, 6, 14, 22, 30, tzinfo=dt.UTC)) is False  # 23:30 BST on 14 June
    # ...and 00:30 BST on 15 June is before that day's 07:00.
    assert overdue_at(dt.datetime(2026, 6, 14, 23, 30, tzinfo=dt.UTC)) is False
    assert SweepRun.objects.get().day == dt.date(2026, 6, 14)


def test_just_after_midnight_in_summer_the_new_london_day_is_due_though_utc_is_still_on_yesterday(daily):
    daily.crontab = CrontabSchedule.objects.create(minute="5", hour="0", timezone="Europe/London")
    daily.save()
    with time_machine.travel(london(2026, 6, 14, 0, 6), tick=False):
        schedule.sweep()

    # 00:20 BST on 15 June is 23:20 UTC on 14 June: the 14th's sweep is not the 15th's.
    assert overdue_at(london(2026, 6, 15, 0, 20)) is True


def test_on_the_day_the_clocks_go_forward_the_sweep_is_due_at_seven_bst(daily):
    # 29 March 2026: 07:00 BST is 06:00 UTC.
    assert overdue_at(dt.datetime(2026, 3, 29, 6, 3, tzinfo=dt.UTC)) is False
    assert overdue_at(dt.datetime(2026, 3, 29, 6, 6, tzinfo=dt.UTC)) is True


def test_a_crontab_in_another_zone_is_read_in_its_own_zone(daily):
    daily.crontab = CrontabSchedule.objects.create(minute="0", hour="7", timezone="UTC")
    daily.save()

    # 07:00 UTC is 08:00 BST.
    assert overdue_at(london(2026, 6, 15, 8, 3)) is False
    assert overdue_at(london(2026, 6, 15, 8, 6)) is True


# --- the catch-up itself ------------------------------------------------------------------------------


def test_a_missed_sweep_is_planned_recorded_and_beat_told_it_ran(daily, unowned, lead):
    now = london(2026, 1, 15, 10)
    with time_machine.travel(now, tick=False):
        added = schedule.catch_up()

    assert added == 1
    assert list(Reminder.objects.values_list("recipient", "stage")) == [(lead.pk, Reminder.Stage.UNOWNED)]
    run = SweepRun.objects.get()
    assert (run.day, run.caught_up, run.planned) == (dt.date(2026, 1, 15), True, 1)
    # So that beat does not fire an early catch-up of its own when tomorrow's window opens at 05:00.
    daily.refresh_from_db()
    assert daily.last_run_at == now


def test_two_ticks_at_once_plan_each_reminder_once(daily, unowned):
    with time_machine.travel(london(2026, 1, 15, 10), tick=False):
        first = schedule.catch_up()
        second = schedule.catch_up()
        # Even when both decided before either recorded the day, the ledger and the record stay single.
        again = schedule.sweep(caught_up=True)

    assert (first, second, again) == (1, 0, 0)
    assert Reminder.objects.count() == 1
    assert SweepRun.objects.count() == 1


def test_beats_own_sweep_records_the_day(daily, unowned):
    with time_machine.travel(london(2026, 1, 15, 7, 0, 5), tick=False):
        schedule.sweep()
    with time_machine.travel(london(2026, 1, 15, 7, 0, 40), tick=False):
        schedule.sweep()  # a second sweep that day moves the finish on

    run = SweepRun.objects.get()
    assert (run.caught_up, run.planned) == (False, 1)
    assert run.finished_at == london(2026, 1, 15, 7, 0, 40)


def test_beats_sweep_task_records_the_day_so_the_tick_leaves_it_alone(transactional_db, unowned, lead):
    call_command("setup_schedule")
    with time_machine.travel(london(2026, 1, 15, 7, 0, 2), tick=False):
        swept = tasks.run_review_sweep()
    with time_machine.travel(london(2026, 1, 15, 10), tick=False):
        tick = tasks.deliver_due_reminders()

    assert (swept["planned"], swept["digests_sent"]) == (1, 1)
    assert SweepRun.objects.get().caught_up is False
    assert tick["planned"] == 0
    assert len(mail.outbox) == 1


def test_the_delivery_tick_sends_the_days_digests_after_a_missed_sweep(transactional_db, unowned, lead):
    call_command("setup_schedule")
    with time_machine.travel(london(2026, 1, 15, 6, 59), tick=False):
        early = tasks.deliver_due_reminders()
    with time_machine.travel(london(2026, 1, 15, 10), tick=False):
        late = tasks.deliver_due_reminders()
        later = tasks.deliver_due_reminders()

    assert (early["planned"], early["digests_sent"]) == (0, 0)
    assert (late["planned"], late["digests_sent"]) == (1, 1)
    assert (later["planned"], later["digests_sent"]) == (0, 0)
    assert [message.to for message in mail.outbox] == [[lead.email]]


# --- with real processes ------------------------------------------------------------------------------


@pytest.mark.integration
def test_beat_back_after_the_sweep_time_has_the_days_digests_out_within_a_minute_once(services, smtp):
    """Beat and a worker start after the sweep's time today, outside beat's loading window if possible.

    Real processes cannot have their clocks frozen, so the sweep's time is moved instead: three hours
    ago (beat never loads it), or as long ago as today allows.
    """
    now = timezone.localtime()
    midnight = dt.datetime.combine(now.date(), dt.time.min, tzinfo=LONDON)
    due = max(now - dt.timedelta(hours=3), midnight)
    if now - due < schedule.SWEEP_GRACE + dt.timedelta(minutes=1):
        pytest.skip("too close to midnight in London for a sweep time already passed today")
    org = OrganisationFactory(slug="cleveland", name="Cleveland Police")
    lead = UserFactory(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD])
    RecommendationFactory(finding__inspection__organisation=org, owner=None)
    call_command("setup_schedule")
    PeriodicTask.objects.filter(name=schedule.SWEEP).update(
        crontab=CrontabSchedule.objects.create(minute=str(due.minute), hour=str(due.hour), timezone="Europe/London")
    )

    _, worker_log = services.worker("--pool=prefork", "--concurrency=1")
    started = timezone.now()
    services.beat()
    wait_for(lambda: len(smtp.handler.received) >= 1, 90, "the day's digest")

    assert timezone.now() - started < dt.timedelta(seconds=80)  # the first tick, a minute after beat starts
    assert [received.rcpt_tos for received in smtp.handler.received] == [[lead.email]]
    run = SweepRun.objects.get()
    assert (run.day, run.caught_up) == (timezone.localdate(), True)

    # The next minute's tick finds the day swept and adds nothing.
    ticks = _ticks_done(worker_log)
    wait_for(lambda: _ticks_done(worker_log) > ticks, 90, "the next tick")
    assert len(smtp.handler.received) == 1
    assert SweepRun.objects.count() == 1
    assert Reminder.objects.count() == 1
