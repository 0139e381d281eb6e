"""Bulk work on the list: the same changes to many recommendations, each row through the workflow.

Each row is its own transaction: the policy decides for that row, a row changed since the page was
loaded is refused (its version), and a refusal undoes every change to that row and to no other.
The result says, per row, what happened, in words the list can show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction

from tracker import permissions, workflow
from tracker.models import Recommendation

if TYPE_CHECKING:
    from tracker.models import User

STALE = "it was changed by someone else after you loaded the list; reload and try again"


@dataclass
class Result:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def message(self) -> str:
        """ "12 changed, 2 refused: OBS3: This recommendation is closed; ..." """
        parts = [f"{len(self.changed)} changed"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already as asked")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        text = ", ".join(parts)
        if self.refused:
            text += ": " + "; ".join(f"{reference}: {reason}" for reference, reason in self.refused)
        return text + "."


def apply(
    user: User,
    rows: dict[int, int],
    *,
    owner: User | None = None,
    target_date: dt.date | None = None,
    rag: str = "",
    review_interval_days: int | None = None,
    reason: str = "",
) -> Result:
    """``rows``: recommendation id -> the version the user saw. Only what they may see is touched."""
    result = Result()
    found = {rec.pk: rec for rec in permissions.visible_recommendations(user).with_related().filter(pk__in=list(rows))}
    for pk in sorted(rows, key=lambda pk: (found[pk].reference, pk) if pk in found else ("", pk)):
        rec = found.get(pk)
        if rec is None:
            result.refused.append(("A recommendation", "it is not one you can see"))
            continue
        before = rows[pk]
        try:
            with transaction.atomic():
                _change(rec, user, before, owner, target_date, rag, review_interval_days, reason)
        except workflow.StaleRecommendation:
            result.refused.append((rec.reference, STALE))
        except (workflow.WorkflowError, permissions.NotPermitted) as exc:
            result.refused.append((rec.reference, str(exc)))
        else:
            (result.changed if rec.version != before else result.unchanged).append(rec.reference)
    return result


def _change(rec: Recommendation, user, version, owner, target_date, rag, days, reason) -> None:
    # Each workflow call refreshes ``rec``; the next one expects the version the last one wrote.
    if owner is not None:
        workflow.assign_owner(rec, by=user, owner=owner, reason=reason, expected_version=version)
        version = rec.version
    if target_date is not None:
        workflow.change_target_date(rec, by=user, target_date=target_date, reason=reason, expected_version=version)
        version = rec.version
    if rag:
        workflow.set_rag(rec, by=user, rag=rag, reason=reason, expected_version=version)
        version = rec.version
    if days is not None:
        workflow.change_review_interval(rec, by=user, days=days, reason=reason, expected_version=version)
