"""Plan actions, measures' data and inspection deadlines in the reminder ledger (issues 14 and 16).

The same sweep, the same digests and the same exactly-once ledger as the review reminders: an action's
owner hears of its due date, a measure's supplier of the data due, the governance leads of their
inspections' deadlines. The clock is frozen at 07:00 London on Friday 1 May 2026.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import InspectionFactory, OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import london
from tracker import reminders, workflow
from tracker.models import ACTION_STAGES, Inspection, MeasureDataPoint, OutcomeMeasure, PlanAction, Reminder
from tracker.permissions import Role

State = Reminder.State
Stage = Reminder.Stage
Deadline = Reminder.Deadline

MAY_1 = london(2026, 5, 1)
SECRET = "CHILD-A-SECRET"  # in every description, name and title: never in an email


def _action(rec, owner, due: dt.date, **extra) -> PlanAction:
    return PlanAction.objects.create(
        recommendation=rec, description=f"{SECRET} action", owner=owner, due_date=due, **extra
    )


def _measure(rec, supplier, frequency: str = "monthly", **extra) -> OutcomeMeasure:
    return OutcomeMeasure.objects.create(
        recommendation=rec,
        name=extra.pop("name", f"{SECRET} measure"),
        definition=f"{SECRET} definition",
        unit="%",
        direction="higher",
        baseline_value=50,
        baseline_period=extra.pop("baseline_period", dt.date(2025, 1, 1)),
        target_value=90,
        target_date=dt.date(2027, 1, 1),
        frequency=frequency,
        supplier=supplier,
        **extra,
    )


@pytest.fixture
def world(org, olly, otto, lead):
    """On 1 May 2026: otto has an action due in 4 days and one 11 days overdue; olly supplies a monthly
    measure with no April figure; the inspection's action plan is due in 9 days, the PCC's response in
    4 (published 10 March) and the revisit today. No review is due, so every item here is a new shape."""
    inspection = InspectionFactory(
        organisation=org,
        title=f"{SECRET} inspection",
        published=dt.date(2026, 3, 10),
        action_plan_due=dt.date(2026, 5, 10),
        revisit_due=dt.date(2026, 5, 1),
    )
    rec = RecommendationFactory(
        finding__inspection=inspection,
        finding__reference="CC1",
        title=f"{SECRET} recommendation",
        owner=olly,
        next_review_due=dt.date(2026, 8, 1),
    )
    return {
        "inspection": inspection,
        "rec": rec,
        "soon": _action(rec, otto, dt.date(2026, 5, 5)),
        "late": _action(rec, otto, dt.date(2026, 4, 20), status=PlanAction.Status.IN_PROGRESS),
        "done": _action(rec, otto, dt.date(2026, 5, 2), status=PlanAction.Status.DONE),
        "measure": _measure(rec, olly),
    }


def _rows() -> set[tuple]:
    return {
        (r.recipient.username, r.stage, r.plan_action_id or r.measure_id or r.deadline, r.due, r.state)
        for r in Reminder.objects.select_related("recipient")
    }


def test_the_sweep_plans_each_item_for_its_own_person_once(sweep_at, world):
    sent = {message.to[0].split("@")[0]: message for message in sweep_at(MAY_1)}

    soon, late, measure = world["soon"], world["late"], world["measure"]
    assert _rows() == {
        ("otto", Stage.ACTION_DUE_SOON, soon.pk, dt.date(2026, 5, 5), State.SENT),
        ("otto", Stage.ACTION_OVERDUE, late.pk, dt.date(2026, 4, 20), State.SENT),
        ("olly", Stage.MEASURE_DATA_DUE, measure.pk, dt.date(2026, 5, 1), State.SENT),  # April's figure
        ("lead", Stage.DEADLINE_APPROACHING, Deadline.ACTION_PLAN, dt.date(2026, 5, 10), State.SENT),
        ("lead", Stage.DEADLINE_APPROACHING, Deadline.PCC_RESPONSE, dt.date(2026, 5, 5), State.SENT),
        ("lead", Stage.DEADLINE_DUE, Deadline.REVISIT, dt.date(2026, 5, 1), State.SENT),
    }
    assert sorted(sent) == ["lead", "olly", "otto"]  # one digest each


def test_a_second_sweep_the_same_day_and_the_next_sends_nothing_again(sweep_at, world):
    first = sweep_at(MAY_1)
    again = sweep_at(london(2026, 5, 1, 9))
    next_day = sweep_at(london(2026, 5, 2))

    assert len(first) == 3
    assert again == next_day == []
    assert Reminder.objects.count() == 6


def test_a_digest_says_what_kind_of_item_and_links_to_its_page_without_case_details(settings, sweep_at, world):
    settings.SITE_URL = "https://tracker.example.police.uk"
    sent = {message.to[0].split("@")[0]: message for message in sweep_at(MAY_1)}

    site = settings.SITE_URL
    expected = {
        "otto": [
            "An action you own on a recommendation's plan is due soon.",
            "An action you own on a recommendation's plan is overdue.",
            "Recommendation CC1.",
            "5 May 2026",
            "20 April 2026",
            f"{site}/plan-actions/{world['soon'].pk}/",
            f"{site}/plan-actions/{world['late'].pk}/",
        ],
        "olly": [
            "Data for April 2026 is due for an outcome measure you supply.",
            f"{site}/measures/{world['measure'].pk}/data/",
        ],
        "lead": [
            "An inspection deadline is approaching: the force's action plan.",
            "An inspection deadline is approaching: the police and crime commissioner's published response.",
            "An inspection deadline is due or has passed: the inspectorate's revisit.",
            f"{site}/inspections/{world['inspection'].pk}/",
        ],
    }
    for person, words in expected.items():
        message = sent[person]
        html = message.alternatives[0].content
        for text in words:
            assert text in message.body, (person, text)
            assert text.replace("'", "&#x27;") in html, (person, text)
        everything = " ".join([message.subject, message.body, html])
        assert SECRET not in everything
        assert "CC1" not in everything or person != "lead"  # a deadline belongs to the inspection
    assert sent["otto"].subject == "Recommendation tracker: 2 dates need your attention"
    assert sent["olly"].subject == "Recommendation tracker: 1 date needs your attention"


def test_what_is_no_longer_due_at_delivery_is_cancelled(transactional_db, world, olly, otto, lead):
    with time_machine.travel(MAY_1, tick=False):
        reminders.plan()
    assert Reminder.objects.count() == 6
    inspection, rec = world["inspection"], world["rec"]
    with time_machine.travel(london(2026, 5, 1, 8), tick=False):
        workflow.set_plan_action_status(world["soon"], by=otto, status=PlanAction.Status.DONE)
        workflow.change_plan_action(
            world["late"],
            by=lead,
            description=world["late"].description,
            owner=otto,
            due_date=dt.date(2026, 6, 30),
            reason="Waiting on the new case system.",
        )
        workflow.enter_measure_data(world["measure"], by=olly, period=dt.date(2026, 4, 1), value=Decimal(80))
        Inspection.objects.filter(pk=inspection.pk).update(action_plan_due=dt.date(2026, 6, 30), revisit_due=None)
        report = reminders.deliver()

    assert report.cancelled == 5
    assert {(r.stage, r.state) for r in Reminder.objects.exclude(state=State.CANCELLED)} == {
        (Stage.DEADLINE_APPROACHING, State.SENT)  # the PCC's response: nothing changed it
    }
    (message,) = mail.outbox
    assert message.to == [lead.email]
    assert rec.pk  # the recommendation itself had nothing due


def test_only_active_people_of_the_items_organisation_hear_of_it(transactional_db, world, org, olly, otto, lead):
    elsewhere = OrganisationFactory(slug="elsewhere")
    UserFactory(username="lead2", organisation=elsewhere, roles=[Role.GOVERNANCE_LEAD])  # another force's lead
    otto.is_active = False
    otto.save()
    olly.organisation = elsewhere  # moved to another force, still named as the supplier
    olly.save()

    with time_machine.travel(MAY_1, tick=False):
        reminders.plan()

    assert {(r.recipient.username, r.stage) for r in Reminder.objects.select_related("recipient")} == {
        ("lead", Stage.DEADLINE_APPROACHING),
        ("lead", Stage.DEADLINE_DUE),
    }


def test_a_new_owner_cancels_the_old_owners_row_and_gets_their_own(transactional_db, world, olly, otto, lead):
    with time_machine.travel(MAY_1, tick=False):
        reminders.plan()
        workflow.change_plan_action(
            world["soon"], by=lead, description=world["soon"].description, owner=olly, due_date=dt.date(2026, 5, 5)
        )
        reminders.plan()
        reminders.deliver()

    soon = Reminder.objects.filter(plan_action=world["soon"])
    assert {(r.recipient.username, r.state) for r in soon} == {("otto", State.CANCELLED), ("olly", State.SENT)}


def test_an_item_whose_worker_died_mid_send_is_sent_once_by_the_next_run(transactional_db, settings, world):
    settings.REMINDER_LEASE_SECONDS = 60
    with time_machine.travel(MAY_1, tick=False):
        reminders.plan()
        _, claimed = reminders.claim(limit_recipients=10)  # a worker claims everything, then dies
    assert len(claimed) == 6 and mail.outbox == []

    with time_machine.travel(london(2026, 5, 1, 7, 5), tick=False):
        reminders.run_sweep()  # the lease has run out: the next run takes the rows over
        reminders.run_sweep()

    assert sorted(m.to[0].split("@")[0] for m in mail.outbox) == ["lead", "olly", "otto"]
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    assert Reminder.objects.count() == 6


def test_an_overdue_action_repeats_weekly_like_an_overdue_review(sweep_at, world):
    sweep_at(MAY_1)
    for day in range(2, 12):
        sweep_at(london(2026, 5, day))

    late = Reminder.objects.filter(plan_action=world["late"]).order_by("occurrence")
    # 11 days late on 1 May is the second week's repeat; the third comes on 5 May (15 days late).
    assert [(r.occurrence, r.sent_at.date()) for r in late] == [(1, dt.date(2026, 5, 1)), (2, dt.date(2026, 5, 5))]


def test_a_deadline_long_passed_is_history_and_a_quarterly_measure_waits_for_its_quarter(sweep_at, org, olly, lead):
    inspection = InspectionFactory(
        organisation=org, published=dt.date(2025, 1, 10), action_plan_due=dt.date(2025, 3, 1)
    )
    rec = RecommendationFactory(finding__inspection=inspection, owner=olly, next_review_due=dt.date(2026, 8, 1))
    quarterly = _measure(rec, olly, frequency="quarterly")
    MeasureDataPoint.objects.create(measure=quarterly, period=dt.date(2026, 1, 1), value=70, entered_by=olly)

    assert sweep_at(MAY_1) == []  # Q1's figure is in; Q2's is not due until 1 July
    (message,) = sweep_at(london(2026, 7, 1))
    assert "Data for Q2 2026 is due" in message.body
    assert not Reminder.objects.filter(inspection=inspection).exists()


def _many(org, otto, n: int) -> None:
    inspections = Inspection.objects.bulk_create(
        InspectionFactory.build(organisation=org, action_plan_due=dt.date(2026, 5, 3)) for _ in range(n)
    )
    rec = RecommendationFactory(finding__inspection=inspections[0], owner=otto, next_review_due=dt.date(2026, 8, 1))
    PlanAction.objects.bulk_create(
        PlanAction(recommendation=rec, description="x", owner=otto, due_date=dt.date(2026, 5, 4)) for _ in range(n)
    )
    for k in range(n):
        _measure(rec, otto, name=f"m{k}")


def _planning_queries(org, otto, n: int) -> tuple[int, int]:
    _many(org, otto, n)
    with time_machine.travel(MAY_1, tick=False), CaptureQueriesContext(connection) as queries:
        added = reminders.plan()
    Reminder.objects.all().delete()
    return len(queries), added


def test_planning_takes_the_same_number_of_queries_for_10_and_200_items(db, org, otto, lead):
    small = _planning_queries(org, otto, 10)
    large = _planning_queries(org, otto, 190)  # 200 of each in all

    # An action due soon, a measure's data and a deadline each.
    assert (small[1], large[1]) == (3 * 10, 3 * 200)
    # The leads, one INSERT ... SELECT for every rule at once, releasing the held notifications (and savepoints).
    assert small[0] == large[0] <= 5


def test_action_data_and_deadline_digests_arrive_once_each_at_a_real_smtp_server(
    smtp, sweep_at, world, olly, otto, lead
):
    sweep_at(MAY_1)
    sweep_at(london(2026, 5, 1, 9))  # a second sweep the same day: nothing more
    sweep_at(london(2026, 5, 2))

    received = {message.rcpt_tos[0]: message for message in smtp.handler.received}
    assert len(smtp.handler.received) == len(received) == 3
    wanted = {
        otto.email: ("An action you own on a recommendation's plan is due soon.", f"/plan-actions/{world['soon'].pk}/"),
        olly.email: (
            "Data for April 2026 is due for an outcome measure you supply.",
            f"/measures/{world['measure'].pk}/",
        ),
        lead.email: (
            "An inspection deadline is approaching: the force's action plan.",
            f"/inspections/{world['inspection'].pk}/",
        ),
    }
    for address, (sentence, link) in wanted.items():
        message = received[address]
        assert message.text.count(sentence) == 1
        assert link in message.text and 'href="http' in message.html and link in message.html
        assert SECRET not in " ".join([message.message["Subject"], message.text, message.html])
        assert message.items() == set()  # no review items: those lines say "review due"
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}


# The planner's SQL and the delivery's re-check agree on every combination (as tests/reminders/test_rules_agree.py
# holds them equal for the review reminders).

TODAY = dt.date(2026, 5, 13)
ITEM_KEY = ("_action", "_measure", "_inspection", "_deadline", "_to", "_stage", "_date", "_occ")


def _planned_items(policy) -> set[tuple]:
    return {
        tuple(row)
        for selection in reminders.due_selections(TODAY, policy).values()
        for row in selection.values_list(*ITEM_KEY)
        if row[0] or row[1] or row[2]
    }


def test_the_planner_and_the_delivery_recheck_agree_on_every_item(db, org, other_org, olly, lead):
    from tracker import ledger_items

    policy = reminders.Policy()
    people = [
        olly,
        lead,
        UserFactory(username="gone", organisation=org, is_active=False),
        UserFactory(username="moved", organisation=other_org),
        UserFactory(username="gil", organisation=org, roles=[Role.GOVERNANCE_LEAD], is_active=False),
        UserFactory(username="mallory", organisation=other_org, roles=[Role.GOVERNANCE_LEAD]),
    ]
    days = [15, 14, 8, 7, 1, 0, -1, -7, -8, -15, -60]
    recs = [
        RecommendationFactory(
            finding__inspection__organisation=org, status=status, next_review_due=TODAY.replace(year=2027)
        )
        for status in ("in_progress", "closed")
    ]
    for rec, person, status, offset in itertools.product(recs, people[:4], PlanAction.Status.values, days):
        _action(
            rec, person, TODAY + dt.timedelta(days=offset), status=status, blocked_reason="x" * (status == "blocked")
        )
    for n, (rec, person, frequency, entered, baseline) in enumerate(
        itertools.product(
            recs, people[:4], ("monthly", "quarterly"), (False, True), (dt.date(2025, 1, 1), dt.date(2026, 4, 1))
        )
    ):
        measure = _measure(rec, person, frequency=frequency, name=f"m{n}", baseline_period=baseline)
        if entered:
            period, _ = ledger_items.measure_period(frequency, TODAY)
            MeasureDataPoint.objects.create(measure=measure, period=period, value=1, entered_by=olly)
    for offset in days:
        date = TODAY + dt.timedelta(days=offset)
        InspectionFactory(
            organisation=org, published=date - dt.timedelta(days=56), action_plan_due=date, revisit_due=date
        )
    InspectionFactory(organisation=other_org, published=TODAY - dt.timedelta(days=50), revisit_due=TODAY)

    sql = _planned_items(policy)

    leads = reminders._leads_among(person.pk for person in people)
    rows = []
    for action in PlanAction.objects.select_related("recommendation__finding", "owner"):
        for stage in ACTION_STAGES:
            for occurrence, late in itertools.product((0, 1, 2, 3, 8), (0, 1)):
                rows.append(
                    Reminder(
                        plan_action=action,
                        stage=stage,
                        due=action.due_date + dt.timedelta(days=late),
                        occurrence=occurrence,
                    )
                )
    for measure in OutcomeMeasure.objects.select_related("recommendation__finding", "supplier"):
        for due in (dt.date(2026, 5, 1), dt.date(2026, 4, 1)):
            rows.append(Reminder(measure=measure, stage=Stage.MEASURE_DATA_DUE, due=due))
    for inspection in Inspection.objects.select_related("organisation"):
        for kind, stage in itertools.product(Deadline.values, (Stage.DEADLINE_APPROACHING, Stage.DEADLINE_DUE)):
            for date in {inspection.action_plan_due, inspection.pcc_response_due, inspection.revisit_due} - {None}:
                rows.append(Reminder(inspection=inspection, deadline=kind, stage=stage, due=date))
    entered = ledger_items.Entered.for_rows(rows)
    python = set()
    for row, person in itertools.product(rows, people):
        row.recipient = person
        if reminders._still_due(row, leads, TODAY, policy, entered):
            python.add(
                (
                    row.plan_action_id,
                    row.measure_id,
                    row.inspection_id,
                    row.deadline,
                    person.pk,
                    row.stage,
                    row.due,
                    row.occurrence,
                )
            )

    assert sorted(sql - python, key=str) == []  # planned, but the delivery would cancel it
    assert sorted(python - sql, key=str) == []  # the delivery would send it, but it is never planned
    stages = {row[5] for row in sql}
    assert stages == {
        Stage.ACTION_DUE_SOON,
        Stage.ACTION_OVERDUE,
        Stage.MEASURE_DATA_DUE,
        Stage.DEADLINE_APPROACHING,
        Stage.DEADLINE_DUE,
    }


def _ledger_rows_of(org, person, lead, state) -> list[Reminder]:
    """A row of each new shape for ``org``: an action's, a measure's and an inspection deadline's."""
    inspection = InspectionFactory(organisation=org, revisit_due=dt.date(2026, 5, 1))
    rec = RecommendationFactory(finding__inspection=inspection, owner=person)
    common = {"state": state, "last_error": f"{SECRET} 550 refused"}
    return [
        Reminder.objects.create(
            plan_action=_action(rec, person, dt.date(2026, 5, 5)),
            recipient=person,
            stage=Stage.ACTION_DUE_SOON,
            due=dt.date(2026, 5, 5),
            **common,
        ),
        Reminder.objects.create(
            measure=_measure(rec, person), recipient=person, stage=Stage.MEASURE_DATA_DUE, due=MAY_1.date(), **common
        ),
        Reminder.objects.create(
            inspection=inspection,
            deadline=Deadline.REVISIT,
            recipient=lead,
            stage=Stage.DEADLINE_DUE,
            due=dt.date(2026, 5, 1),
            **common,
        ),
    ]


def test_the_admin_and_its_health_page_show_a_lead_their_own_organisations_rows_of_every_shape(
    client, org, other_org, olly, lead, mallory
):
    from django.core.management import call_command

    call_command("loaddata", "groups", verbosity=0)
    ours = _ledger_rows_of(org, olly, lead, State.FAILED)
    theirs = _ledger_rows_of(other_org, UserFactory(organisation=other_org), mallory, State.FAILED)
    client.force_login(lead)

    listed = client.get("/admin/tracker/reminder/", {"attention": "undelivered"})
    health_page = client.get("/admin/tracker/reminder/health/")

    assert {row.pk for row in listed.context["cl"].result_list} == {row.pk for row in ours}
    assert "Plan action" in listed.content.decode() and "revisit" in listed.content.decode()
    assert dict(health_page.context["lines"])["Failed"] == "3"
    for row in theirs:
        assert client.get(f"/admin/tracker/reminder/{row.pk}/change/").status_code in (302, 404)
    for row in ours:
        assert client.get(f"/admin/tracker/reminder/{row.pk}/change/").status_code == 200


def test_the_settings_page_says_dates_always_come_in_the_daily_digest(client, lead, olly):
    for person in (lead, olly):
        client.force_login(person)
        response = client.get("/settings/notifications/")
        assert "inspection deadlines always come in the morning digest" in response.content.decode()
        offered = " ".join(str(field.label) for field in response.context["form"].fields.values()).lower()
        assert offered and "deadline" not in offered and "plan action" not in offered  # not choices
