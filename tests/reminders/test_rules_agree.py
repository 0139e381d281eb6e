"""The planner's SQL and the delivery's Python re-check answer "is this reminder due?" identically.

Both come from ``reminders.rules``; what each adds on its own (the occurrence arithmetic, who the
recipients are, NULL handling) is held equal here by running both over every combination of status,
owner, escalation contact, review date, stage, recipient and occurrence.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tests.factories import InspectionFactory, RecommendationFactory, UserFactory
from tracker import reminders
from tracker.models import REVIEW_STAGES, Recommendation, Reminder
from tracker.permissions import Role

Stage = Reminder.Stage
REVIEW = [stage.value for stage in REVIEW_STAGES]  # the sweep's stages; notifications are planned by the workflow
Status = Recommendation.Status

TODAY = dt.date(2026, 5, 13)
# (recommendation, recipient, stage, review due date, occurrence)
REVIEW_KEY = ("_rec", "_to", "_stage", "_due", "_occ")


def review_offsets(policy: reminders.Policy) -> list[int]:
    """Days from today to the review date on either side of every boundary the rules draw."""
    lead, every, escalate = policy.lead_days, policy.overdue_repeat_days, policy.escalation_days
    edges = {lead + 1, lead, 1, 0, -1, -every, -every - 1, -2 * every - 1, -escalate + 1, -escalate, -escalate - 1}
    return sorted(edges, reverse=True)


@pytest.fixture
def people(org, other_org):
    """Everyone a reminder could conceivably go to, active or not, here or elsewhere."""
    make = UserFactory
    contact, gone_contact = (
        make(username="cara", organisation=org),
        make(username="ivan", organisation=org, is_active=False),
    )
    return {
        "lead": make(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD]),
        "gone lead": make(username="gil", organisation=org, roles=[Role.GOVERNANCE_LEAD], is_active=False),
        "other lead": make(username="mallory", organisation=other_org, roles=[Role.GOVERNANCE_LEAD]),
        "reviewer": make(username="rita", organisation=org, roles=[Role.REVIEWER]),
        "owner": make(username="olly", organisation=org, roles=[Role.OWNER]),
        "owner with contact": make(username="otto", organisation=org, escalation_contact=contact),
        "owner with gone contact": make(username="owen", organisation=org, escalation_contact=gone_contact),
        "gone owner": make(username="ina", organisation=org, is_active=False),
        "contact": contact,
        "gone contact": gone_contact,
    }


OWNERS = [None, "owner", "owner with contact", "owner with gone contact", "gone owner"]


def every_combination(org, people, policy) -> list[Recommendation]:
    inspection = InspectionFactory(organisation=org)
    replacement = RecommendationFactory(finding__inspection=inspection, next_review_due=TODAY + dt.timedelta(days=90))
    for status, owner, offset in itertools.product(Status.values, OWNERS, review_offsets(policy)):
        RecommendationFactory(
            finding__inspection=inspection,
            status=status,
            superseded_by=replacement if status == Status.SUPERSEDED else None,
            owner=people[owner] if owner else None,
            next_review_due=TODAY + dt.timedelta(days=offset),
        )
    # Loaded the way delivery loads a claimed row's recommendation.
    return list(
        Recommendation.objects.filter(finding__inspection=inspection).select_related(
            "finding__inspection", "owner__escalation_contact"
        )
    )


def planned(today: dt.date, policy: reminders.Policy) -> set[tuple]:
    return {
        tuple(row)
        for selection in reminders.due_selections(today, policy).values()
        for row in selection.values_list(*REVIEW_KEY)
        if row[0] is not None  # a review reminder (tests/reminders/test_ledger_items.py holds the other shapes)
    }


def rechecked(recs, people, today: dt.date, policy: reminders.Policy) -> set[tuple]:
    """Every conceivable ledger row, kept where the delivery's re-check says it is still due."""
    leads = reminders._leads_among(user.pk for user in people.values())
    kept = set()
    for rec, user in itertools.product(recs, people.values()):
        row = Reminder(recommendation=rec, recipient=user)  # one instance, refilled: thousands are tried
        for stage, occurrence, late_by in itertools.product(REVIEW, [0, 1, 2], [0, 1]):
            row.stage, row.occurrence = stage, occurrence
            row.review_due = rec.next_review_due + dt.timedelta(days=late_by)  # 1: for a review since completed
            if reminders._still_due(row, leads, today, policy):
                kept.add((rec.pk, user.pk, row.stage, row.review_due, row.occurrence))
    return kept


@pytest.mark.parametrize(
    "policy",
    [reminders.Policy(), reminders.Policy(lead_days=3, overdue_repeat_days=2, escalation_days=5)],
    ids=["defaults", "short"],
)
def test_the_planner_and_the_delivery_recheck_agree_on_every_combination(org, people, policy):
    recs = every_combination(org, people, policy)

    sql = planned(TODAY, policy)
    python = rechecked(recs, people, TODAY, policy)

    assert sorted(sql - python) == []  # planned, but the delivery would cancel it
    assert sorted(python - sql) == []  # the delivery would send it, but it is never planned
    # Not vacuous: every stage, both kinds of escalation and repeated overdue reminders occur.
    assert {stage for _, _, stage, _, _ in sql} == set(REVIEW)
    escalated_to = {to for _, to, stage, _, _ in sql if stage == Stage.ESCALATION}
    assert {people["contact"].pk, people["lead"].pk} <= escalated_to
    assert {occurrence for *_, occurrence in sql} >= {0, 1, 2}
