"""Home as a task inbox: each role's groups of work, each group a rule written once.

A group is a condition on the recommendations a person may see. Home shows each group's count and
its first few rows; the list (``?group=<key>``, ``tracker.filters``) shows the same group in full,
with the same condition, so the count on home and the length of the list cannot disagree.

What a condition needs beyond the row itself is kept on the row (the latest submission and when it counts
as stuck, ``tracker.kept``), an annotation computed only for the groups that read it (the latest assurance
event), or asked once for the page (four eyes: the few items the person worked on, ``Context.involved``);
pending evidence, moved target dates and failed reminders are read from their own few rows. Counting every
group is one query (each group's count from its own narrow set, in one UNION ALL) and their first rows are
two more (``_first_rows``), however many recommendations and groups there are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker import counts as tracker_counts
from tracker import deadlines, permissions, policy
from tracker.models import (
    Evidence,
    Recommendation,
    RecommendationEvent,
    Reminder,
)
from tracker.permissions import Role

if TYPE_CHECKING:
    from tracker.models import User

Event = RecommendationEvent.Action
Status = Recommendation.Status

# Rows shown per group on home; the rest are one "see all" link away.
INBOX_ROWS = 8
# Home counts each group up to this many and then says "1,000+": counting every stuck item, or every item
# with no target date, read each of them (tens of thousands at national scale) on every visit. The list
# (?group=) counts them all.
COUNT_LIMIT = 1000
# A lead hears about target dates moved in this many days.
MOVED_WITHIN_DAYS = 30
# The events that say where an item stands between owner and reviewer: the latest one decides
# whether it has been returned to its owner (a rejection the owner has not yet answered).
_ASSURANCE_EVENTS = (Event.SUBMITTED, Event.REJECTED, Event.EVIDENCE_ADDED, Event.EVIDENCE_REJECTED, Event.REOPENED)
RETURNED_EVENTS = (Event.REJECTED, Event.EVIDENCE_REJECTED)
# What the owner's groups read: the latest of those events' action.
_ASSURANCE = ("inbox_assurance_action",)


@dataclass(frozen=True)
class Context:
    user: User
    today: dt.date
    now: dt.datetime
    # The items awaiting assurance or a verdict on evidence that this person worked on (four eyes: not theirs
    # to assure): their ids, or when there are very many, the query that finds them.
    involved: frozenset[int] | QuerySet = frozenset()


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    empty: str  # what home says when nothing is in it
    condition: Callable[[Context], Q]
    order: tuple[str, ...] = ("next_review_due", "pk")
    # The annotations (ANNOTATIONS) its condition and order read: only these are computed for its count
    # and rows, so a group that reads none costs a plain indexed query.
    reads: tuple[str, ...] = ()
    needs_involved: bool = False  # its condition reads Context.involved
    # Its condition reads only status and RAG: counted from the kept counts (tracker.counts) for someone who
    # sees the whole organisation, a few rows instead of every one of that rating.
    by_status_and_rag: bool = False


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
    return Q(status=Status.AWAITING_ASSURANCE) & ~Q(pk__in=c.involved)


def _evidence(c: Context) -> Q:
    # Read from the few pending pieces of evidence, not counted on every open row.
    pending = Evidence.objects.filter(verdict=Evidence.Verdict.PENDING).values("recommendation_id")
    return Recommendation.open_q() & ~Q(status=Status.AWAITING_ASSURANCE) & Q(pk__in=pending) & ~Q(pk__in=c.involved)


def _no_owner(c: Context) -> Q:
    return Recommendation.open_q() & Q(owner__isnull=True)


def _no_target(c: Context) -> Q:
    return Recommendation.open_q() & Q(target_date__isnull=True)


def _moves(now: dt.datetime) -> QuerySet[RecommendationEvent]:
    """Target dates moved (a first date set is no move) within the window, newest first."""
    return (
        RecommendationEvent.objects.filter(
            action=Event.TARGET_DATE_CHANGED, at__gte=now - dt.timedelta(days=MOVED_WITHIN_DAYS)
        )
        .exclude(old_value="none")
        .order_by("-at", "-pk")
    )


def _target_moved(c: Context) -> Q:
    # Read from the window's moves (the action and date index), not asked of every open row.
    return Recommendation.open_q() & Q(pk__in=_moves(c.now).order_by().values("recommendation_id"))


def _red(c: Context) -> Q:
    return Recommendation.open_q() & Q(rag=Recommendation.Rag.RED)


def _stuck(c: Context) -> Q:
    """No progress update (or, never updated, no change since it was made) for two review intervals: the date
    that happens is kept on the row (``tracker.kept``), so this is read from its index."""
    return Recommendation.open_q() & Q(stuck_from__lt=c.now)


def _reminders_failed(c: Context) -> Q:
    # A reminder about one of its plan actions or outcome measures counts too (their rows carry no
    # recommendation). Read from the failed and dead reminders (the state index), not asked of every row:
    # one IN over the union of the three paths, which PostgreSQL answers from the few ids (an OR of three
    # INs made it hash every open row, 5 ms at 50,000).
    failed = Reminder.objects.filter(state__in=[Reminder.State.FAILED, Reminder.State.DEAD]).order_by()
    paths = [failed.filter(**{f"{path}__isnull": False}).values_list(path, flat=True) for path in _REMINDER_PATHS]
    return Q(pk__in=paths[0].union(*paths[1:]))


_REMINDER_PATHS = ("recommendation", "plan_action__recommendation", "measure__recommendation")


GROUPS = {
    group.key: group
    for group in (
        Group("returned", "Returned to you", "Nothing has been returned to you.", _returned, reads=_ASSURANCE),
        Group("overdue", "Your reviews overdue", "None of your reviews is overdue.", _overdue, reads=_ASSURANCE),
        Group(
            "due_soon",
            "Your reviews due soon",
            "No review of yours is due in the next few days.",
            _due_soon,
            reads=_ASSURANCE,
        ),
        Group(
            "target_missed",
            "Your target dates passed",
            "None of your target dates has passed.",
            _target_missed,
            ("target_date", "pk"),
            reads=_ASSURANCE,
        ),
        Group(
            "mine_rest",
            "Your other open recommendations",
            "You own no other open recommendations.",
            _rest,
            reads=_ASSURANCE,
        ),
        Group(
            "awaiting",
            "Awaiting your assurance",
            "Nothing awaits your assurance.",
            _awaiting,
            ("submitted_at", "pk"),
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
        Group("red", "Red RAG", "No open recommendation is rated red.", _red, by_status_and_rag=True),
        Group(
            "stuck",
            "Stuck: no update for two review intervals",
            "Nothing is stuck.",
            _stuck,
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

# Not a group: how many open items a person owns, counted before their groups (inbox).
_MINE = "mine"
OWNER_GROUPS = ("returned", "overdue", "due_soon", "target_missed", "mine_rest")
REVIEWER_GROUPS = ("awaiting", "evidence")
LEAD_GROUPS = ("no_owner", "no_target", "target_moved", "red", "stuck", "reminders_failed")


def _latest(events: QuerySet, field: str) -> Subquery:
    return Subquery(events.filter(recommendation=OuterRef("pk")).order_by("-at", "-pk").values(field)[:1])


_ASSURANCE_QS = RecommendationEvent.objects.filter(action__in=_ASSURANCE_EVENTS)
# What a condition reads beyond the row, each a correlated subquery, asked only by the groups that read it.
ANNOTATIONS: dict[str, Callable[[], object]] = {
    # Never NULL: "not returned" must be true, not unknown, for an item with no such event yet.
    "inbox_assurance_action": lambda: Coalesce(_latest(_ASSURANCE_QS, "action"), Value("")),
}


def annotate(qs: QuerySet[Recommendation], reads) -> QuerySet[Recommendation]:
    """The annotations ``reads`` names, and no others."""
    return qs.annotate(**{name: ANNOTATIONS[name]() for name in reads})


# Past this many items a person worked on among those awaiting assurance or a verdict, the groups ask the
# query that finds them instead of listing their ids.
INVOLVED_LISTED = 1000


def context_for(user: User, keys, visible: QuerySet[Recommendation] | None = None) -> Context:
    now = timezone.now()
    visible = visible if visible is not None else permissions.visible_recommendations(user)
    involved: frozenset[int] | QuerySet = frozenset()
    if any(GROUPS[key].needs_involved for key in keys):
        involved = _involved_in(visible, user)
    return Context(user=user, today=timezone.localdate(), now=now, involved=involved)


def _involved_in(visible: QuerySet[Recommendation], user: User) -> frozenset[int] | QuerySet:
    """Four eyes (``policy.with_involved``) asked once, of the items awaiting assurance or a verdict on evidence,
    for the few this person worked on: the groups then exclude a list of ids, where asking each row would
    build and compile four eyes' subqueries for every group's count and rows (a third of a lead's home).

    First the candidates the person ever touched (``policy.ever_involved``, a few ids from their own indexes;
    a reviewer or lead has usually touched none, and four eyes is then not even built), then four eyes of
    those alone."""
    pending = Evidence.objects.filter(verdict=Evidence.Verdict.PENDING).values("recommendation_id")
    candidates = visible.filter(
        Q(status=Status.AWAITING_ASSURANCE) | (Recommendation.open_q() & Q(pk__in=pending)),
        pk__in=policy.ever_involved(user),
    ).order_by()
    touched = list(candidates.values_list("pk", flat=True)[: INVOLVED_LISTED + 1])
    if not touched:
        return frozenset()
    if len(touched) > INVOLVED_LISTED:
        return policy.with_involved(candidates, user).filter(fact_involved=True).values("pk")
    worked_on = policy.with_involved(visible.filter(pk__in=touched), user).filter(fact_involved=True).order_by()
    return frozenset(worked_on.values_list("pk", flat=True))


def filter_group(qs: QuerySet[Recommendation], user: User, key: str) -> QuerySet[Recommendation]:
    """The list's ``?group=``: the same condition as home's count."""
    return _selected(qs, context_for(user, [key], qs), [key])[key]


def _selected(visible: QuerySet[Recommendation], c: Context, keys) -> dict[str, QuerySet[Recommendation]]:
    """Each group's rows, unordered; groups that read the same annotations share their annotated queryset."""
    annotated: dict[tuple[str, ...], QuerySet[Recommendation]] = {}
    selected = {}
    for key in keys:
        group = GROUPS[key]
        if group.reads not in annotated:
            annotated[group.reads] = annotate(visible, group.reads)
        selected[key] = annotated[group.reads].filter(group.condition(c))
    return selected


def _counts(selected: dict[str, QuerySet[Recommendation]], c: Context) -> dict[str, int]:
    """Each group counted by its own query from its own narrow set, all in one UNION ALL: one aggregate over
    every visible row would compute every group's annotations for each of them. Each stops at COUNT_LIMIT + 1
    rows, but those kept (tracker.counts), which are exact at no cost."""
    kept = tracker_counts.kept_for(c.user)
    parts = [
        tracker_counts.counted(kept.filter(GROUPS[key].condition(c)), key, Coalesce(Sum("n"), 0))
        if kept is not None and key in GROUPS and GROUPS[key].by_status_and_rag
        else tracker_counts.up_to(rows, key, COUNT_LIMIT + 1)
        for key, rows in selected.items()
    ]
    return tracker_counts.union(parts, selected)


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
    count: int  # up to COUNT_LIMIT + 1
    rows: list[Recommendation]

    @property
    def figure(self) -> str:
        """The count as home shows it: "1,000+" past COUNT_LIMIT."""
        return f"{COUNT_LIMIT:,}+" if self.count > COUNT_LIMIT else str(self.count)


def inbox(user: User, visible: QuerySet[Recommendation]) -> list[tuple[str, list[Shown]]]:
    """Each section's groups with their counts (one query) and first rows (two queries, _first_rows)."""
    sections = groups_for(user)
    keys = [key for _title, section in sections for key in section]
    if not keys:
        return []
    c = context_for(user, keys, visible)
    # A lead who is not an owner is shown "your recommendations" only when they own something open: that is
    # counted first, as one figure, and its five groups are built, counted and read only then.
    unless_owned = (
        OWNER_GROUPS if OWNER_GROUPS in dict(sections).values() and not permissions.has_role(user, Role.OWNER) else ()
    )
    selected = _selected(visible, c, [key for key in keys if key not in unless_owned])
    counts = _counts(selected | ({_MINE: visible.filter(_mine(c))} if unless_owned else {}), c)
    if unless_owned and counts[_MINE]:
        owned = _selected(visible, c, unless_owned)
        selected |= owned
        counts |= _counts(owned, c)
    elif unless_owned:
        sections = [(title, section) for title, section in sections if section != unless_owned]
    keys = [key for _title, section in sections for key in section]
    rows = _first_rows(visible, selected, c, keys)
    shown = {key: Shown(GROUPS[key], counts[key], rows[key]) for key in keys}
    return [(title, [shown[key] for key in section]) for title, section in sections]


def _sort_key(group: Group) -> Callable[[Recommendation], tuple]:
    """The group's order in Python, for its first rows read in one query: an empty date (an item awaiting
    assurance with no submission recorded) where the database puts it, last on PostgreSQL, first on SQLite."""
    empty_last = connection.features.nulls_order_largest

    def key(rec: Recommendation) -> tuple:
        values = (getattr(rec, name) for name in group.order)
        return tuple(((value is None) == empty_last, value) for value in values)

    return key


def _first_rows(
    visible: QuerySet[Recommendation], selected: dict[str, QuerySet[Recommendation]], c: Context, keys
) -> dict[str, list[Recommendation]]:
    """Each group's first rows in two queries, however many groups: the ids of every group's first rows in
    one UNION ALL (each chosen by its ids alone, so sorting a large group, every item awaiting assurance,
    moves ids rather than whole joined rows), then those rows in full (not asked when there are none); a
    third only when a row was returned or its target moved (``_read_returns_and_moves``)."""
    chosen = tracker_counts.union_all(
        tracker_counts.first(selected[key].order_by(*GROUPS[key].order), key, INBOX_ROWS) for key in keys
    )
    rows = visible.filter(pk__in=[pk for _key, pk in chosen]).with_related()
    found = {rec.pk: rec for rec in rows}
    first: dict[str, list[Recommendation]] = {key: [] for key in keys}
    for key, pk in chosen:
        if pk in found:  # not deleted in between
            first[key].append(found[pk])
    _read_returns_and_moves(first.get("returned", []), first.get("target_moved", []), c.now)
    return {key: sorted(recs, key=_sort_key(GROUPS[key])) for key, recs in first.items()}


def _read_returns_and_moves(returned: list[Recommendation], moved: list[Recommendation], now: dt.datetime) -> None:
    """Sets ``inbox_return`` on each returned row, the rejection that returned it (its reason in full), and
    ``inbox_move`` on each row whose target moved, the latest move: those few events in one query, asked
    only when there are such rows. As annotations of every first row they cost 7 ms at 50,000 on PostgreSQL."""
    if not returned and not moved:
        return
    latest_return = Recommendation.objects.filter(pk__in=[rec.pk for rec in returned]).values(
        event=_latest(_ASSURANCE_QS, "pk")
    )
    latest_move = Recommendation.objects.filter(pk__in=[rec.pk for rec in moved]).values(
        event=Subquery(_moves(now).filter(recommendation=OuterRef("pk")).values("pk")[:1])
    )
    events = RecommendationEvent.objects.filter(Q(pk__in=latest_return) | Q(pk__in=latest_move)).select_related("actor")
    by_kind = {(event.action == Event.TARGET_DATE_CHANGED, event.recommendation_id): event for event in events}
    for rec in returned:
        rec.inbox_return = by_kind.get((False, rec.pk))
    for rec in moved:
        rec.inbox_move = by_kind.get((True, rec.pk))


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


def summary(user: User, visible: QuerySet[Recommendation]) -> dict[str, int]:
    """The organisation's figures, in one query. For someone who sees the whole organisation, those by status
    and RAG are the kept counts (``tracker.counts``: a few rows), and only what depends on today or the owner
    is counted, from its index; otherwise each is counted over what the person sees."""
    today = timezone.localdate()
    by_status_or_rag = {
        "open": Recommendation.open_q(),
        "red": Recommendation.open_q() & Q(rag=Recommendation.Rag.RED),
        "awaiting": Q(status=Status.AWAITING_ASSURANCE),
        "closed": Q(status=Status.CLOSED),
    }
    counted = {
        "overdue": Recommendation.overdue_q(today),
        "no_owner": Recommendation.open_q() & Q(owner__isnull=True),
    }
    kept = tracker_counts.kept_for(user)
    if kept is None:
        return visible.aggregate(**{key: Count("pk", filter=q) for key, q in (by_status_or_rag | counted).items()})
    parts = [tracker_counts.counted(kept.filter(q), key, Coalesce(Sum("n"), 0)) for key, q in by_status_or_rag.items()]
    parts += [tracker_counts.counted(visible.filter(q), key, Count("pk")) for key, q in counted.items()]
    return tracker_counts.union(parts, [*by_status_or_rag, *counted])


def changes_since(user: User, visible: QuerySet[Recommendation]) -> dict:
    """Events on visible recommendations since the person's last visit to home, then marks this visit."""
    from tracker.models import User as UserModel

    now = timezone.now()
    since = user.home_seen_at or now - dt.timedelta(days=7)
    # From the events since then (the date index), each checked against what the person sees: "in the ids
    # they see" would first list every one of them, the whole organisation's.
    events = RecommendationEvent.objects.filter(Exists(visible.filter(pk=OuterRef("recommendation_id"))), at__gt=since)
    total = events.count()
    # The ids first, from that index alone, then those few events with their recommendations: joined in one
    # query, SQLite walked every recommendation of the organisation looking for events (23 ms at 50,000).
    first = list(events.order_by("-at", "-pk").values_list("pk", flat=True)[:CHANGES_SHOWN]) if total else []
    latest = list(
        RecommendationEvent.objects.filter(pk__in=first)
        .select_related("recommendation__finding", "actor")
        .order_by("-at", "-pk")
    )
    UserModel.objects.filter(pk=user.pk).update(home_seen_at=now)
    return {"since": since, "first_visit": user.home_seen_at is None, "total": total, "events": latest}
