"""Home as a task inbox: each role's groups of work, each group a rule written once.

A group is a condition on the recommendations a person may see. Home shows each group's count and
its first few rows; the list (``?group=<key>``, ``tracker.filters``) shows the same group in full,
with the same condition, so the count on home and the length of the list cannot disagree.

Everything a condition needs beyond the row itself (the latest assurance event, pending evidence,
failed reminders, the last progress update, four eyes) is an annotation, so counting every group is
one query and listing a group is one more, however many recommendations there are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker import deadlines, permissions, policy
from tracker.models import ProgressUpdate, Recommendation, RecommendationEvent, Reminder
from tracker.permissions import Role

if TYPE_CHECKING:
    from tracker.models import User

Event = RecommendationEvent.Action
Status = Recommendation.Status

# Rows shown per group on home; the rest are one "see all" link away.
INBOX_ROWS = 8
# A lead hears about target dates moved in this many days.
MOVED_WITHIN_DAYS = 30
# The events that say where an item stands between owner and reviewer: the latest one decides
# whether it has been returned to its owner (a rejection the owner has not yet answered).
_ASSURANCE_EVENTS = (Event.SUBMITTED, Event.REJECTED, Event.EVIDENCE_ADDED, Event.EVIDENCE_REJECTED, Event.REOPENED)
RETURNED_EVENTS = (Event.REJECTED, Event.EVIDENCE_REJECTED)


@dataclass(frozen=True)
class Context:
    user: User
    today: dt.date
    now: dt.datetime
    intervals: tuple[int, ...] = ()  # the review intervals in use: "stuck" is written per interval


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    empty: str  # what home says when nothing is in it
    condition: Callable[[Context], Q]
    order: tuple[str, ...] = ("next_review_due", "pk")
    needs_involved: bool = False  # four eyes: policy.with_facts's "did this person do the work"
    needs_intervals: bool = False


def _mine(c: Context) -> Q:
    return Q(owner_id=c.user.pk) & Recommendation.open_q()


def _returned(c: Context) -> Q:
    return _mine(c) & Q(inbox_assurance_action__in=RETURNED_EVENTS)


def _overdue(c: Context) -> Q:
    return _mine(c) & Recommendation.overdue_q(c.today) & ~_returned(c)


def _due_soon(c: Context) -> Q:
    return _mine(c) & Recommendation.due_soon_q(c.today) & ~_returned(c)


def _target_missed(c: Context) -> Q:
    taken = _returned(c) | Recommendation.overdue_q(c.today) | Recommendation.due_soon_q(c.today)
    return _mine(c) & Recommendation.target_missed_q(c.today) & ~taken


def _rest(c: Context) -> Q:
    taken = (
        _returned(c)
        | Recommendation.overdue_q(c.today)
        | Recommendation.due_soon_q(c.today)
        | Recommendation.target_missed_q(c.today)
    )
    return _mine(c) & ~taken


def _awaiting(c: Context) -> Q:
    return Q(status=Status.AWAITING_ASSURANCE, fact_involved=False)


def _evidence(c: Context) -> Q:
    return Recommendation.open_q() & ~Q(status=Status.AWAITING_ASSURANCE) & Q(fact_pending__gt=0, fact_involved=False)


def _no_owner(c: Context) -> Q:
    return Recommendation.open_q() & Q(owner__isnull=True)


def _no_target(c: Context) -> Q:
    return Recommendation.open_q() & Q(target_date__isnull=True)


def _target_moved(c: Context) -> Q:
    return Recommendation.open_q() & Q(inbox_target_moved=True)


def _red(c: Context) -> Q:
    return Recommendation.open_q() & Q(rag=Recommendation.Rag.RED)


def _stuck(c: Context) -> Q:
    """No progress update (or, never updated, no change since it was made) for two review intervals."""
    per_interval = [
        Q(review_interval_days=days, inbox_last_activity__lt=c.now - dt.timedelta(days=2 * days))
        for days in c.intervals
    ]
    return Recommendation.open_q() & (reduce(or_, per_interval) if per_interval else Q(pk__in=[]))


def _reminders_failed(c: Context) -> Q:
    return Q(inbox_reminder_failed=True)


GROUPS = {
    group.key: group
    for group in (
        Group("returned", "Returned to you", "Nothing has been returned to you.", _returned),
        Group("overdue", "Your reviews overdue", "None of your reviews is overdue.", _overdue),
        Group("due_soon", "Your reviews due soon", "No review of yours is due in the next few days.", _due_soon),
        Group(
            "target_missed",
            "Your target dates passed",
            "None of your target dates has passed.",
            _target_missed,
            ("target_date", "pk"),
        ),
        Group("mine_rest", "Your other open recommendations", "You own no other open recommendations.", _rest),
        Group(
            "awaiting",
            "Awaiting your assurance",
            "Nothing awaits your assurance.",
            _awaiting,
            ("inbox_submitted_at", "pk"),
            needs_involved=True,
        ),
        Group(
            "evidence",
            "Evidence awaiting a verdict",
            "No evidence awaits your verdict.",
            _evidence,
            needs_involved=True,
        ),
        Group("no_owner", "No owner", "Every open recommendation has an owner.", _no_owner),
        Group("no_target", "No target date", "Every open recommendation has a target date.", _no_target),
        Group(
            "target_moved",
            f"Target dates moved in the last {MOVED_WITHIN_DAYS} days",
            "No target date has moved recently.",
            _target_moved,
        ),
        Group("red", "Red RAG", "No open recommendation is rated red.", _red),
        Group(
            "stuck",
            "Stuck: no update for two review intervals",
            "Nothing is stuck.",
            _stuck,
            needs_intervals=True,
        ),
        Group(
            "reminders_failed",
            "Reminders failed or dead",
            "Every reminder has been delivered or is still being tried.",
            _reminders_failed,
        ),
    )
}
GROUP_CHOICES = [(key, group.title) for key, group in GROUPS.items()]

OWNER_GROUPS = ("returned", "overdue", "due_soon", "target_missed", "mine_rest")
REVIEWER_GROUPS = ("awaiting", "evidence")
LEAD_GROUPS = ("no_owner", "no_target", "target_moved", "red", "stuck", "reminders_failed")


def annotate(qs: QuerySet[Recommendation], user: User, now: dt.datetime) -> QuerySet[Recommendation]:
    """What the group conditions read beyond the row: correlated subqueries, not a query per row."""
    assurance = RecommendationEvent.objects.filter(
        recommendation=OuterRef("pk"), action__in=_ASSURANCE_EVENTS
    ).order_by("-at", "-pk")
    submitted = RecommendationEvent.objects.filter(recommendation=OuterRef("pk"), action=Event.SUBMITTED).order_by(
        "-at", "-pk"
    )
    moved = RecommendationEvent.objects.filter(
        recommendation=OuterRef("pk"),
        action=Event.TARGET_DATE_CHANGED,
        at__gte=now - dt.timedelta(days=MOVED_WITHIN_DAYS),
    ).exclude(old_value="none")
    latest_update = ProgressUpdate.objects.filter(recommendation=OuterRef("pk")).order_by("-created_at")
    # A reminder about one of its plan actions or outcome measures counts too (their rows carry no recommendation).
    failed = Reminder.objects.filter(
        Q(recommendation=OuterRef("pk"))
        | Q(plan_action__recommendation=OuterRef("pk"))
        | Q(measure__recommendation=OuterRef("pk")),
        state__in=[Reminder.State.FAILED, Reminder.State.DEAD],
    )
    qs = qs.annotate(
        # Never NULL: "not returned" must be true, not unknown, for an item with no such event yet.
        inbox_assurance_action=Coalesce(Subquery(assurance.values("action")[:1]), Value("")),
        inbox_assurance_event=Subquery(assurance.values("pk")[:1]),
        inbox_submitted_at=Subquery(submitted.values("at")[:1]),
        inbox_target_moved=Exists(moved),
        inbox_last_activity=Coalesce(Subquery(latest_update.values("created_at")[:1]), F("created_at")),
        inbox_reminder_failed=Exists(failed),
    )
    if "fact_involved" in qs.query.annotations:  # the API's list has them already
        return qs
    return policy.with_facts(qs, user, measures=False)  # home decides no closing


def context_for(user: User, keys, visible: QuerySet[Recommendation] | None = None) -> Context:
    now = timezone.now()
    intervals: tuple[int, ...] = ()
    if any(GROUPS[key].needs_intervals for key in keys):
        visible = visible if visible is not None else permissions.visible_recommendations(user)
        intervals = tuple(
            visible.filter(Recommendation.open_q()).order_by().values_list("review_interval_days", flat=True).distinct()
        )
    return Context(user=user, today=timezone.localdate(), now=now, intervals=intervals)


def filter_group(qs: QuerySet[Recommendation], user: User, key: str) -> QuerySet[Recommendation]:
    """The list's ``?group=``: the same condition as home's count."""
    c = context_for(user, [key], qs)
    return annotate(qs, user, c.now).filter(GROUPS[key].condition(c))


def groups_for(user: User) -> list[tuple[str, tuple[str, ...]]]:
    """The sections of a person's home, by role, in the order the issue gives them."""
    sections = []
    if permissions.has_role(user, Role.OWNER, Role.GOVERNANCE_LEAD):
        sections.append(("Your recommendations", OWNER_GROUPS))
    if permissions.has_role(user, Role.GOVERNANCE_LEAD):
        sections.append(("Across your organisation", LEAD_GROUPS))
    if permissions.has_role(user, Role.REVIEWER, Role.GOVERNANCE_LEAD):
        sections.append(("Assurance", REVIEWER_GROUPS))
    return sections


@dataclass
class Shown:
    group: Group
    count: int
    rows: list[Recommendation]


def inbox(user: User, visible: QuerySet[Recommendation]) -> list[tuple[str, list[Shown]]]:
    """Each section's groups with their counts (one query) and first rows (one query per non-empty group)."""
    sections = groups_for(user)
    keys = [key for _title, section in sections for key in section]
    if not keys:
        return []
    c = context_for(user, keys, visible)
    annotated = annotate(visible, user, c.now)
    counts = annotated.aggregate(**{key: Count("pk", filter=GROUPS[key].condition(c)) for key in keys})
    shown: dict[str, Shown] = {}
    for key in keys:
        group = GROUPS[key]
        rows = annotated.filter(group.condition(c)).with_related().order_by(*group.order)
        if key == "returned":
            rows = _with_return(rows)
        elif key == "target_moved":
            rows = _with_move(rows, c.now)
        # Asked even when the count is 0, so that home costs the same number of queries whatever the data.
        shown[key] = Shown(group, counts[key], list(rows[:INBOX_ROWS]))
    result = []
    for title, section in sections:
        groups = [shown[key] for key in section]
        if section == OWNER_GROUPS and not permissions.has_role(user, Role.OWNER) and not any(g.count for g in groups):
            continue  # a lead who owns nothing is not shown an empty "your recommendations"
        result.append((title, groups))
    return result


def _with_return(rows: QuerySet[Recommendation]) -> QuerySet[Recommendation]:
    """The rejection that returned each row, with its reason in full, read in the same query as the rows."""
    event = RecommendationEvent.objects.filter(pk=OuterRef("inbox_assurance_event"))
    return rows.annotate(
        returned_action=Subquery(event.values("action")),
        returned_reason=Subquery(event.values("reason")),
        returned_what=Subquery(event.values("new_value")),
        returned_at=Subquery(event.values("at")),
        returned_by_first=Subquery(event.values("actor__first_name")),
        returned_by_last=Subquery(event.values("actor__last_name")),
        returned_by_username=Subquery(event.values("actor__username")),
    )


def _with_move(rows: QuerySet[Recommendation], now: dt.datetime) -> QuerySet[Recommendation]:
    """The latest move of each row's target date, when and why, read in the same query as the rows."""
    moves = (
        RecommendationEvent.objects.filter(
            recommendation=OuterRef("pk"),
            action=Event.TARGET_DATE_CHANGED,
            at__gte=now - dt.timedelta(days=MOVED_WITHIN_DAYS),
        )
        .exclude(old_value="none")
        .order_by("-at", "-pk")
    )
    return rows.annotate(moved_at=Subquery(moves.values("at")[:1]), moved_reason=Subquery(moves.values("reason")[:1]))


def inspection_deadlines(user: User, today: dt.date | None = None) -> list[tuple[deadlines.Deadline, str]] | None:
    """A lead's inspection deadlines approaching or recently passed, each with its days left or passed
    (one query); None for anyone else, whose home has no such group."""
    if not permissions.has_role(user, Role.GOVERNANCE_LEAD):
        return None
    today = today or timezone.localdate()
    found = deadlines.approaching_or_passed(permissions.visible_inspections(user), today)
    return [(deadline, deadline.status(today)) for deadline in found]


# The viewer's home: the figures, and what changed since they last looked.


def shows_summary(user: User) -> bool:
    return permissions.has_role(user, Role.VIEWER)


CHANGES_SHOWN = 10


def summary(visible: QuerySet[Recommendation]) -> dict[str, int]:
    today = timezone.localdate()
    return visible.aggregate(
        open=Count("pk", filter=Recommendation.open_q()),
        overdue=Count("pk", filter=Recommendation.overdue_q(today)),
        red=Count("pk", filter=Recommendation.open_q() & Q(rag=Recommendation.Rag.RED)),
        no_owner=Count("pk", filter=Recommendation.open_q() & Q(owner__isnull=True)),
        awaiting=Count("pk", filter=Q(status=Status.AWAITING_ASSURANCE)),
        closed=Count("pk", filter=Q(status=Status.CLOSED)),
    )


def changes_since(user: User, visible: QuerySet[Recommendation]) -> dict:
    """Events on visible recommendations since the person's last visit to home, then marks this visit."""
    from tracker.models import User as UserModel

    now = timezone.now()
    since = user.home_seen_at or now - dt.timedelta(days=7)
    events = RecommendationEvent.objects.filter(recommendation__in=visible.values("pk"), at__gt=since)
    total = events.count()
    latest = list(events.select_related("recommendation__finding", "actor").order_by("-at", "-pk")[:CHANGES_SHOWN])
    UserModel.objects.filter(pk=user.pk).update(home_seen_at=now)
    return {"since": since, "first_visit": user.home_seen_at is None, "total": total, "events": latest}
