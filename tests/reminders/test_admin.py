"""Governance leads see undelivered reminders in the admin and can send them again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from tests.factories import RecommendationFactory
from tracker.models import Reminder

State = Reminder.State


@pytest.fixture
def ledger(org, olly, otto):
    call_command("loaddata", "groups", verbosity=0)
    rec = RecommendationFactory(finding__inspection__organisation=org, finding__reference="CC9", owner=olly)

    def row(recipient, state, **extra):
        return Reminder.objects.create(
            recommendation=rec,
            recipient=recipient,
            stage="overdue",
            review_due=dt.date(2026, 5, 1),
            state=state,
            **extra,
        )

    return {
        "failed": row(olly, State.FAILED, last_error="550 5.1.1 mailbox unavailable", attempts=1),
        "dead": row(otto, State.DEAD, last_error="ConnectionRefusedError", attempts=10, occurrence=1),
        "sent": row(olly, State.SENT, occurrence=2),
        "retrying": row(otto, State.PENDING, last_error="421 try later", attempts=2, occurrence=3),
    }


def test_the_governance_lead_sees_failed_and_dead_reminders(client, lead, ledger):
    client.force_login(lead)

    page = client.get("/admin/tracker/reminder/", {"attention": "undelivered"})

    assert page.status_code == 200
    shown = {row.pk for row in page.context["cl"].result_list}
    assert shown == {ledger["failed"].pk, ledger["dead"].pk}
    assert b"550 5.1.1 mailbox unavailable" in page.content
    retrying = client.get("/admin/tracker/reminder/", {"attention": "retrying"})
    assert {row.pk for row in retrying.context["cl"].result_list} == {ledger["retrying"].pk}


def test_the_governance_lead_can_retry_failed_and_dead_reminders_now(client, lead, ledger):
    client.force_login(lead)
    chosen = [ledger["failed"].pk, ledger["dead"].pk, ledger["sent"].pk]

    response = client.post("/admin/tracker/reminder/", {"action": "retry_now", "_selected_action": chosen}, follow=True)

    assert response.status_code == 200
    states = dict(Reminder.objects.filter(pk__in=chosen).values_list("pk", "state"))
    assert states == {
        ledger["failed"].pk: State.PENDING,
        ledger["dead"].pk: State.PENDING,
        ledger["sent"].pk: State.SENT,
    }
    assert Reminder.objects.get(pk=ledger["dead"].pk).attempts == 0
    assert "2 reminder(s) queued" in response.content.decode()


def test_only_governance_leads_are_offered_the_retry(client, rita, ledger):
    client.force_login(rita)
    rita.is_staff = True
    rita.save()

    page = client.get("/admin/tracker/reminder/")

    assert page.status_code == 200
    assert "retry_now" not in page.context["cl"].model_admin.get_actions(page.wsgi_request)
