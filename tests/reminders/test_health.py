"""Reminder health: the admin page (a lead's organisation, or all for the operator), the dashboard's
warning when the sweep has stopped, and ``check_reminders`` for an external monitor."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from config.celery import BEAT_LOCK_KEY
from config.celery import app as celery_app
from tests.factories import RecommendationFactory, UserFactory
from tests.reminders.conftest import free_port, london
from tracker import health, schedule
from tracker.models import Reminder, SweepRun

State = Reminder.State
URL = "/admin/tracker/reminder/health/"
NOW = london(2026, 1, 15, 12)


def _row(rec, recipient, state, *, occurrence, attempts=0, created=None):
    row = Reminder.objects.create(
        recommendation=rec,
        recipient=recipient,
        stage="overdue",
        review_due=dt.date(2026, 1, 1),
        state=state,
        attempts=attempts,
        occurrence=occurrence,
    )
    if created is not None:
        Reminder.objects.filter(pk=row.pk).update(created_at=created)
    return row


@pytest.fixture
def ledger(org, olly, other_org, mallory):
    """At home: 2 pending (1 retrying, the oldest 3 hours old), 1 failed, 2 dead, 1 sent, 2 held for the digest.
    Elsewhere: 1 pending, 4 failed and 1 held, which nobody at home may count."""
    call_command("loaddata", "groups", verbosity=0)
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly)
    _row(rec, olly, State.PENDING, occurrence=0, created=NOW - dt.timedelta(hours=3))
    _row(rec, olly, State.PENDING, occurrence=1, attempts=2, created=NOW - dt.timedelta(minutes=10))
    _row(rec, olly, State.FAILED, occurrence=2, attempts=1, created=NOW - dt.timedelta(days=5))  # not pending
    _row(rec, olly, State.DEAD, occurrence=3, attempts=10)
    _row(rec, olly, State.DEAD, occurrence=4, attempts=10)
    _row(rec, olly, State.SENT, occurrence=5, attempts=1)
    _row(rec, olly, State.HELD, occurrence=6)
    _row(rec, olly, State.HELD, occurrence=7)
    theirs = RecommendationFactory(finding__inspection__organisation=other_org, owner=mallory)
    _row(theirs, mallory, State.PENDING, occurrence=0, created=NOW - dt.timedelta(days=2))
    for n in range(1, 5):
        _row(theirs, mallory, State.FAILED, occurrence=n)
    _row(theirs, mallory, State.HELD, occurrence=5)
    return rec


def _swept(at: dt.datetime) -> None:
    SweepRun.objects.create(day=timezone.localdate(at), started_at=at, finished_at=at)


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", organisation=None, is_staff=True, is_superuser=True)


@pytest.fixture
def no_redis():
    """A broker URL where nothing listens: the lock cannot be read."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    yield
    celery_app.conf.broker_url = previous


def _figures(page) -> dict[str, str]:
    return dict(page.context["lines"])


# --- the figures ----------------------------------------------------------------------------------


def test_the_figures_count_each_state_and_age_the_oldest_pending_row(ledger, no_redis):
    _swept(NOW - dt.timedelta(hours=5))

    figures = health.reminder_health(Reminder.objects.filter(recommendation=ledger), now=NOW)

    assert (figures.pending, figures.retrying, figures.failed, figures.dead) == (2, 1, 1, 2)
    assert figures.held_for_digest == 2
    assert figures.oldest_pending_age == dt.timedelta(hours=3)
    assert figures.sweep_age == dt.timedelta(hours=5)
    assert figures.beat.held is None


# --- the admin page -------------------------------------------------------------------------------


def test_the_lead_sees_their_own_organisations_figures_only(client, lead, ledger, no_redis):
    _swept(timezone.now() - dt.timedelta(hours=2))
    client.force_login(lead)

    page = client.get(URL)

    assert page.status_code == 200
    figures = _figures(page)
    assert (figures["Pending"], figures["Failed"], figures["Dead"]) == ("2", "1", "2")
    assert figures["Retrying (pending after a temporary failure)"] == "1"
    assert figures["Held for the next daily digest"] == "2"
    assert figures["Last review sweep"].endswith("(2 h 00 min ago)")
    assert "sweep-stale" not in page.content.decode()


def test_the_reminders_list_links_to_it(client, lead, ledger):
    client.force_login(lead)

    assert f'href="{URL}"' in client.get("/admin/tracker/reminder/").content.decode()


def test_the_operator_sees_every_organisations_figures(client, operator, ledger, no_redis):
    client.force_login(operator)

    figures = _figures(client.get(URL))

    assert (figures["Pending"], figures["Failed"], figures["Dead"]) == ("3", "5", "2")
    assert figures["Last review sweep"] == "never"


@pytest.mark.parametrize("persona", ["rita", "olly", "vic"])
def test_nobody_else_may_see_it(client, request, ledger, persona):
    person = request.getfixturevalue(persona)
    person.is_staff = True
    person.save()
    client.force_login(person)

    assert client.get(URL).status_code == 403


def test_an_unreachable_redis_makes_the_beat_lock_unknown_not_an_error(client, lead, ledger, no_redis):
    client.force_login(lead)

    page = client.get(URL)

    assert page.status_code == 200
    assert _figures(page)["Beat lock"].startswith("unknown")


def test_the_beat_lock_is_read_from_redis(client, lead, operator, ledger, broker):
    client.force_login(lead)
    assert _figures(client.get(URL))["Beat lock"] == "not held (no beat is running)"

    broker.set(BEAT_LOCK_KEY, "beat-host:4242", ex=60)
    assert _figures(client.get(URL))["Beat lock"] == "held"  # which machine is the operator's business
    client.force_login(operator)
    assert _figures(client.get(URL))["Beat lock"] == "held by beat-host:4242"


def test_the_page_warns_when_no_sweep_has_run_for_over_a_day(client, lead, ledger, no_redis):
    _swept(timezone.now() - dt.timedelta(hours=26))
    client.force_login(lead)

    assert 'id="sweep-stale"' in client.get(URL).content.decode()


# --- the dashboard's warning ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_sweep_hours_ago", "warned"),
    [(None, True), (2, False), (24.5, False), (25.5, True), (80, True)],
)
def test_the_dashboard_warns_when_the_last_sweep_is_over_a_day_old(client, lead, last_sweep_hours_ago, warned):
    if last_sweep_hours_ago is not None:
        _swept(timezone.now() - dt.timedelta(hours=last_sweep_hours_ago))
    client.force_login(lead)

    page = client.get("/dashboard/")

    assert page.status_code == 200
    assert ('id="sweep-stale"' in page.content.decode()) is warned


def test_a_sweep_clears_the_dashboards_warning(client, lead):
    client.force_login(lead)
    assert 'id="sweep-stale"' in client.get("/dashboard/").content.decode()

    schedule.sweep()

    assert 'id="sweep-stale"' not in client.get("/dashboard/").content.decode()


# --- check_reminders ------------------------------------------------------------------------------


def _check(*args: str) -> tuple[int, str, str]:
    """(exit status, the figures printed, the problems named) as ``manage.py check_reminders`` gives them."""
    out = StringIO()
    try:
        call_command("check_reminders", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def test_check_reminders_passes_after_a_recent_sweep_with_nothing_undelivered(db, no_redis):
    _swept(timezone.now() - dt.timedelta(hours=25, minutes=50))

    status, printed, problems = _check()

    assert (status, problems) == (0, "")
    assert "Pending: 0" in printed
    assert "Beat lock: unknown" in printed
    assert printed.rstrip().endswith("OK")


def test_check_reminders_fails_when_no_sweep_has_ever_completed(db, no_redis):
    status, _, problems = _check()

    assert (status, problems) == (1, "no review sweep has ever completed")


def test_check_reminders_fails_when_the_last_sweep_is_older_than_26_hours(db, no_redis):
    with time_machine.travel(NOW, tick=False):
        _swept(NOW - dt.timedelta(hours=26, minutes=10))
        status, printed, problems = _check()
        relaxed = _check("--max-sweep-age", "27")[0]

    assert (status, problems) == (1, "the last review sweep completed 26 h 10 min ago (more than 26 h 00 min)")
    assert "Last review sweep: 14 January 2026 09:50 (26 h 10 min ago)" in printed
    assert relaxed == 0


def test_check_reminders_fails_on_failed_or_dead_rows_and_says_which(ledger, no_redis):
    _swept(timezone.now())

    status, printed, problems = _check()

    assert status == 1
    # Every organisation's rows: the command is the operator's view.
    assert problems == "5 reminder(s) failed (more than 0); 2 reminder(s) dead (more than 0)"
    assert "Failed: 5" in printed


def test_check_reminders_thresholds_are_flags(ledger, no_redis):
    _swept(timezone.now())

    assert _check("--max-failed", "5", "--max-dead", "2")[0] == 0
    assert _check("--max-failed", "5", "--max-dead", "1")[::2] == (1, "2 reminder(s) dead (more than 1)")
