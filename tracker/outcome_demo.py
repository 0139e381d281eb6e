"""Demo plans and outcome measures for the Cleveland causes of concern (``setup_demo``; issue 16).

Clearly marked as demo: the inspectorate set no measures, and the seed must not pretend it did. Every
item is written through ``tracker.workflow``, as a person would. Idempotent: a cause of concern that
already has a plan or a measure is left alone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.utils import timezone

from tracker import workflow
from tracker.models import Finding, PlanAction, Recommendation

if TYPE_CHECKING:
    from tracker.models import User

DEMO = "[Demo]"
DEFINITION = (
    "Demo example only: the inspectorate set no measures. Share of missing-child episodes in the month in "
    "which the child was found within 24 hours, from the force's case system."
)
# CC1 is held open (2 of the last 3 months at target); CC2 has 3 months at target and may close.
VALUES = {"CC1": [78, 91, 86, 93], "CC2": [84, 91, 92, 94]}


def _months_before(today: dt.date, n: int) -> list[dt.date]:
    first, periods = today.replace(day=1), []
    for _ in range(n):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        periods.append(first)
    return periods[::-1]


def add_demo_outcomes(lead: User, owner: User, other_owner: User, today: dt.date | None = None) -> int:
    """Give each open cause of concern of the lead's organisation a demo plan and measure; returns how many."""
    today = today or timezone.localdate()
    done = 0
    causes = Recommendation.objects.with_related().filter(
        organisation_id=lead.organisation_id,
        finding__kind=Finding.Kind.CAUSE_OF_CONCERN,
        finding__reference__in=list(VALUES),
        finding__inspection__tracked=True,
        status__in=Recommendation.OPEN_STATUSES,
    )
    for rec in causes:
        if rec.plan_actions.exists() or rec.measures.exists():
            continue
        plan = [
            (f"{DEMO} Brief every response officer on the missing-children procedure", owner, -30),
            (f"{DEMO} Dip-sample 20 missing-child episodes each month", other_owner, -7),
            (f"{DEMO} Report the monthly audit to the safeguarding board", other_owner, 45),
        ]
        items = [
            workflow.add_plan_action(rec, by=lead, description=text, owner=who, due_date=today + dt.timedelta(days=d))
            for text, who, d in plan
        ]
        workflow.set_plan_action_status(items[0], by=owner, status=PlanAction.Status.DONE)
        workflow.set_plan_action_status(items[1], by=other_owner, status=PlanAction.Status.IN_PROGRESS)
        values = VALUES[rec.finding.reference]
        periods = _months_before(today, len(values))
        measure = workflow.add_measure(
            rec,
            by=lead,
            name=f"{DEMO} Missing children found within 24 hours",
            definition=DEFINITION,
            unit="%",
            direction="higher",
            baseline_value=72,
            baseline_period=periods[0] - dt.timedelta(days=365),
            target_value=90,
            target_date=today + dt.timedelta(days=180),
            frequency="monthly",
            supplier=owner,
        )
        for period, value in zip(periods, values, strict=True):
            workflow.enter_measure_data(measure, by=owner, period=period, value=value, note="Demo figure")
        done += 1
    return done
