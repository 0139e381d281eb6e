"""The clocks that follow an inspection's publication.

- The police and crime commissioner's published response: 56 days after an HMICFRS report on their
  force is published (Police Act 1996 s.55), computed from ``Inspection.published``.
- The force's action plan and the inspectorate's revisit: dates a governance lead sets on the inspection.

``upcoming`` is what an inbox or digest asks for; ``for_inspection`` is what the inspection page shows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from tracker.models import PCC_RESPONSE_DAYS, Inspection, Organisation

PCC_RESPONSE = "Police and crime commissioner's published response"
ACTION_PLAN = "Force's action plan"
REVISIT = "Inspectorate's revisit"


@dataclass(frozen=True)
class Deadline:
    inspection: Inspection
    label: str
    date: dt.date
    basis: str

    def days_left(self, today: dt.date) -> int:
        """Days until the date; negative once it has passed."""
        return (self.date - today).days

    def status(self, today: dt.date) -> str:
        days = self.days_left(today)
        if days == 0:
            return "Due today"
        if days > 0:
            return f"{days} day{'s' if days != 1 else ''} left"
        return f"Passed {-days} day{'s' if days != -1 else ''} ago"


def for_inspection(inspection: Inspection) -> list[Deadline]:
    """The inspection's deadlines in date order (those it has: a date not set is not a deadline)."""
    found = []
    pcc = inspection.pcc_response_due
    if pcc:
        basis = f"{PCC_RESPONSE_DAYS} days after publication on {inspection.published:%-d %B %Y} (Police Act 1996 s.55)"
        found.append(Deadline(inspection, PCC_RESPONSE, pcc, basis))
    if inspection.action_plan_due:
        found.append(Deadline(inspection, ACTION_PLAN, inspection.action_plan_due, "Set by the governance lead"))
    if inspection.revisit_due:
        found.append(Deadline(inspection, REVISIT, inspection.revisit_due, "Set by the governance lead"))
    return sorted(found, key=lambda d: d.date)


def upcoming(
    organisation: Organisation | int, within_days: int, today: dt.date | None = None
) -> list[tuple[Inspection, str, dt.date]]:
    """(inspection, label, date) for the organisation's deadlines from today to ``within_days`` ahead,
    soonest first. Passed deadlines are not included."""
    today = today or timezone.localdate()
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    found = approaching_or_passed(
        Inspection.objects.filter(organisation_id=organisation_id), today, ahead_days=within_days, passed_days=0
    )
    return [(deadline.inspection, deadline.label, deadline.date) for deadline in found]


# The lead's inbox: deadlines coming up, and those passed recently (nothing records a deadline as met, so
# a passed one stays in view for a while and then drops out, rather than accusing for ever).
INBOX_AHEAD_DAYS = 60  # a new report's PCC response (56 days) is in view from publication
INBOX_PASSED_DAYS = 30


def approaching_or_passed(
    inspections: QuerySet[Inspection],
    today: dt.date,
    ahead_days: int = INBOX_AHEAD_DAYS,
    passed_days: int = INBOX_PASSED_DAYS,
) -> list[Deadline]:
    """The deadlines of ``inspections`` from ``passed_days`` ago to ``ahead_days`` ahead, soonest first:
    one query, however many inspections."""
    earliest, latest = today - dt.timedelta(days=passed_days), today + dt.timedelta(days=ahead_days)
    pcc_published = (earliest - dt.timedelta(days=PCC_RESPONSE_DAYS), latest - dt.timedelta(days=PCC_RESPONSE_DAYS))
    candidates = inspections.filter(
        Q(published__range=pcc_published)
        | Q(action_plan_due__range=(earliest, latest))
        | Q(revisit_due__range=(earliest, latest))
    ).select_related("organisation")
    found = [
        deadline
        for inspection in candidates
        for deadline in for_inspection(inspection)
        if earliest <= deadline.date <= latest
    ]
    return sorted(found, key=lambda d: (d.date, d.inspection.pk, d.label))
