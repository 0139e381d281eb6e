"""When each reminder stage fires, to whom, with the clock frozen (time-machine, never sleep)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from tests.factories import RecommendationFactory, UserFactory
from tests.reminders.conftest import london
from tracker import reminders
from tracker.models import Recommendation, Reminder
from tracker.permissions import Role

Stage = Reminder.Stage


def _fired_each_day(sweep_at, first: dt.date, last: dt.date) -> dict[dt.date, set[tuple[str, str, str]]]:
    """Sweep at 07:00 London every day; what (recipient, reference, stage) went out on which day."""
    fired = {}
    day = first
    while day <= last:
        at = london(day.year, day.month, day.day)
        emailed = {message.to[0] for message in sweep_at(at)}
        sent = {
            (r.recipient.username, r.recommendation.finding.reference, r.stage)
            for r in Reminder.objects.filter(sent_at=at).select_related("recipient", "recommendation__finding")
        }
        assert {f"{username}@example.org" for username, _, _ in sent} == emailed
        if sent:
            fired[day] = sent
        day += dt.timedelta(days=1)
    return fired


@pytest.fixture
def due_1_april(org, olly, lead):
    return RecommendationFactory(
        finding__inspection__organisation=org, finding__reference="CC1", owner=olly, next_review_due=dt.date(2026, 4, 1)
    )


def test_each_stage_fires_on_its_day_only_across_the_clock_change_and_the_month_end(sweep_at, due_1_april):
    # British Summer Time starts on Sunday 29 March 2026; the review is due on 1 April.
    fired = _fired_each_day(sweep_at, dt.date(2026, 3, 20), dt.date(2026, 4, 24))

    assert fired == {
        dt.date(2026, 3, 25): {("olly", "CC1", Stage.DUE_SOON)},  # seven days ahead
        dt.date(2026, 4, 2): {("olly", "CC1", Stage.OVERDUE)},  # the day after the review date
        dt.date(2026, 4, 9): {("olly", "CC1", Stage.OVERDUE)},  # then weekly
        dt.date(2026, 4, 15): {("lead", "CC1", Stage.ESCALATION)},  # overdue by 14 days: no contact, so the lead
        dt.date(2026, 4, 16): {("olly", "CC1", Stage.OVERDUE)},
        dt.date(2026, 4, 23): {("olly", "CC1", Stage.OVERDUE)},
    }


def test_it_uses_the_london_date_not_the_utc_date_around_midnight_in_summer(sweep_at, org, olly):
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 6, 10))

    sweep_at(london(2026, 6, 10, 23, 30))  # still the review date in London: due soon, not overdue
    assert list(Reminder.objects.values_list("stage", flat=True)) == [Stage.DUE_SOON]

    late = sweep_at(london(2026, 6, 11, 0, 30))  # 23:30 UTC on the 10th, but the 11th in London

    assert len(late) == 1
    assert Reminder.objects.filter(stage=Stage.OVERDUE).count() == 1


def test_a_missed_day_catches_up_and_the_weekly_repeats_keep_their_rhythm(sweep_at, due_1_april):
    assert sweep_at(london(2026, 4, 1)) != []  # due soon, sent on the review date itself (late start)
    assert sweep_at(london(2026, 4, 4)) != []  # no sweep ran on the 2nd or 3rd: overdue goes out now
    assert sweep_at(london(2026, 4, 5)) == []
    assert sweep_at(london(2026, 4, 8)) == []
    assert sweep_at(london(2026, 4, 9)) != []  # the second weekly overdue, counted from the review date

    overdue = Reminder.objects.filter(stage=Stage.OVERDUE).order_by("occurrence")
    assert [(r.occurrence, r.sent_at.date()) for r in overdue] == [(0, dt.date(2026, 4, 4)), (1, dt.date(2026, 4, 9))]


def test_a_repeated_run_on_the_same_day_sends_nothing_more(sweep_at, due_1_april):
    assert len(sweep_at(london(2026, 4, 2))) == 1
    assert sweep_at(london(2026, 4, 2, 7, 5)) == []
    assert sweep_at(london(2026, 4, 2, 18)) == []
    assert Reminder.objects.count() == 1


@pytest.mark.parametrize("threshold", [3, 14, 30])
def test_escalation_fires_when_overdue_by_the_configured_threshold(settings, sweep_at, org, olly, rita, threshold):
    settings.REMINDER_ESCALATION_DAYS = threshold
    olly.escalation_contact = rita
    olly.save()
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 1))
    due = dt.date(2026, 5, 1)

    def escalated_on(day: dt.date) -> bool:
        sent = sweep_at(london(day.year, day.month, day.day))
        return any(message.to == [rita.email] for message in sent)

    day_before = due + dt.timedelta(days=threshold - 1)
    assert not escalated_on(day_before)
    assert escalated_on(due + dt.timedelta(days=threshold))
    assert not escalated_on(due + dt.timedelta(days=threshold + 1))
    assert Reminder.objects.filter(stage=Stage.ESCALATION, recipient=rita).count() == 1


def test_the_lead_time_is_a_setting(settings, sweep_at, org, olly):
    settings.REMINDER_LEAD_DAYS = 3
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 10))

    assert sweep_at(london(2026, 5, 6)) == []
    assert [m.to for m in sweep_at(london(2026, 5, 7))] == [[olly.email]]


def test_escalation_goes_to_the_governance_leads_when_the_contact_is_inactive(sweep_at, org, olly, rita, lead):
    olly.escalation_contact = rita
    olly.save()
    rita.is_active = False
    rita.save()
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 1))

    sent = sweep_at(london(2026, 5, 15))

    assert sorted(m.to[0] for m in sent) == sorted([olly.email, lead.email])
    assert Reminder.objects.get(stage=Stage.ESCALATION).recipient == lead


def test_unowned_recommendations_go_to_this_organisations_active_governance_leads(sweep_at, org, lead, mallory):
    second_lead = UserFactory(username="lena", organisation=org, roles=[Role.GOVERNANCE_LEAD])
    UserFactory(username="gone", organisation=org, roles=[Role.GOVERNANCE_LEAD], is_active=False)
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=None, next_review_due=dt.date(2026, 7, 1))

    sent = sweep_at(london(2026, 5, 1))

    assert sorted(m.to[0] for m in sent) == sorted([lead.email, second_lead.email])  # not mallory, not "gone"
    assert set(Reminder.objects.values_list("stage", "recommendation", "review_due")) == {
        (Stage.UNOWNED, rec.pk, dt.date(2026, 7, 1))
    }
    assert sweep_at(london(2026, 5, 2)) == []  # once per review date, not daily


def test_an_inactive_owner_counts_as_no_owner(sweep_at, org, olly, lead):
    olly.is_active = False
    olly.save()
    RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 3))

    sent = sweep_at(london(2026, 5, 4))  # overdue, but olly has left

    assert [m.to for m in sent] == [[lead.email]]
    assert Reminder.objects.get().stage == Stage.UNOWNED


def test_closed_and_superseded_recommendations_get_no_reminders(sweep_at, org, olly, lead):
    closed = RecommendationFactory(finding__inspection__organisation=org, owner=olly, status="closed")
    closed.next_review_due = dt.date(2026, 5, 1)
    closed.save()

    assert sweep_at(london(2026, 5, 10)) == []


def test_one_digest_per_recipient_holds_all_of_their_items(sweep_at, org, olly, otto, lead):
    soon = RecommendationFactory(finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 5, 5))
    late = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 4, 30)
    )
    later = RecommendationFactory(
        finding__inspection__organisation=org, owner=olly, next_review_due=dt.date(2026, 4, 16)
    )
    others = RecommendationFactory(
        finding__inspection__organisation=org, owner=otto, next_review_due=dt.date(2026, 5, 2)
    )
    nobody = RecommendationFactory(finding__inspection__organisation=org, owner=None)

    sent = {message.to[0]: message for message in sweep_at(london(2026, 5, 1))}

    assert sorted(sent) == sorted([olly.email, otto.email, lead.email])
    for rec in (soon, late, later):
        assert rec.get_absolute_url() in sent[olly.email].body
    assert others.get_absolute_url() in sent[otto.email].body
    assert nobody.get_absolute_url() in sent[lead.email].body
    assert later.get_absolute_url() in sent[lead.email].body  # its escalation: 15 days overdue
    assert "3 recommendation reviews need your attention" in sent[olly.email].body


def test_planning_takes_the_same_number_of_queries_for_many_recommendations(
    django_assert_max_num_queries, org, olly, otto, lead
):
    for owner in (olly, otto, None):
        RecommendationFactory.create_batch(
            12, finding__inspection__organisation=org, owner=owner, next_review_due=dt.date(2026, 4, 1)
        )
    # Nine: the selections' inserts, and releasing the notifications held for the daily digest.
    with time_machine.travel(london(2026, 4, 20), tick=False), django_assert_max_num_queries(9):
        added = reminders.plan()

    assert added == Reminder.objects.count() == 12 * 2 + 12 * 2 + 12  # overdue + escalation each; unowned
    assert Recommendation.objects.count() == 36
    assert mail.outbox == []
