"""What may this person do to this recommendation now, and if not, why: the one answer.

The role rules (``tracker.permissions``) and the state guards together. The recommendation page's
links, the API's ``allowed_actions``, the admin's actions and change form, and the guard inside every
write in ``tracker.workflow`` all ask :func:`decide`, so no interface can offer what another refuses.

A refusal is either by role (``NotPermitted``: 403, "you may never do this here") or by state
(``WorkflowError``: 409, "not now", with what to do instead).

Four eyes is decided by who did the work, not by who owns the recommendation now: closing it, and
giving evidence a verdict, are refused to anyone who owned it, submitted it, or added evidence to it
since it was last opened (created or reopened), whoever owns it now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache, reduce
from operator import or_
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Value, prefetch_related_objects

from tracker import outcomes, permissions
from tracker.errors import WorkflowError
from tracker.models import Evidence, Finding, Inspection, Recommendation, RecommendationEvent
from tracker.permissions import Action, NotPermitted, role_allows, role_refusal

if TYPE_CHECKING:
    from tracker.models import User

Status = Recommendation.Status
Event = RecommendationEvent.Action

# The work that rules a person out of assuring it: submitting it, adding evidence to it, moving one of
# its plan actions on, and entering or correcting its outcome data (issue 16).
_WORK_EVENTS = (
    Event.SUBMITTED,
    Event.EVIDENCE_ADDED,
    Event.PLAN_ACTION_STATUS,
    Event.MEASURE_DATA_ENTERED,
    Event.MEASURE_DATA_CORRECTED,
)

_DID_THE_WORK = (
    "You have owned, submitted or added evidence to this recommendation, or worked on its plan or outcome "
    "data, since it was last opened, so someone else must"
)
FOUR_EYES_CLOSE = f"{_DID_THE_WORK} close it (four eyes)."
FOUR_EYES_EVIDENCE = f"{_DID_THE_WORK} give its evidence a verdict (four eyes)."
FOUR_EYES_OVERRIDE = f"{_DID_THE_WORK} decide to close it without its outcomes (four eyes)."


@dataclass(frozen=True)
class Decision:
    action: Action | str  # an Action, or permissions.SET_INSPECTION_DATES for an inspection's dates
    allowed: bool
    reason: str = ""
    by_role: bool = False  # refused because of who the person is, not because of the state

    def __bool__(self) -> bool:
        return self.allowed

    def raise_if_refused(self) -> None:
        if self.allowed:
            return
        if self.by_role:
            raise NotPermitted(self.reason)
        raise WorkflowError(self.reason)


class Facts:
    """What the guards need to know about a recommendation beyond its own row.

    Read from annotations when the row came from :func:`with_facts` (lists: a constant number of
    queries), otherwise queried once each, on first use.
    """

    def __init__(self, rec: Recommendation, user: User) -> None:
        self.rec = rec
        self.user = user

    def _annotated(self, name: str):
        return getattr(self.rec, f"fact_{name}", None)

    @cached_property
    def evidence(self) -> dict[str, int]:
        annotated = self._annotated("live_evidence")
        if annotated is not None:
            return {
                "live": annotated,
                "live_outcome": self.rec.fact_live_outcome,
                "pending": self.rec.fact_pending,
                "accepted": self.rec.fact_accepted,
                "accepted_outcome": self.rec.fact_accepted_outcome,
            }
        return Evidence.objects.filter(recommendation_id=self.rec.pk).aggregate(**_EVIDENCE_COUNTS)

    @cached_property
    def involved(self) -> bool:
        annotated = self._annotated("involved")
        if annotated is not None:
            return bool(annotated)
        return self.user.pk in involved_user_ids(self.rec)

    @property
    def cause_of_concern(self) -> bool:
        return self.rec.finding.kind == Finding.Kind.CAUSE_OF_CONCERN

    # Asked by a dozen actions' guards of each row: worked out once (``is_open`` tests the row against a Q).

    @cached_property
    def is_open(self) -> bool:
        return self.rec.is_open

    @cached_property
    def status_label(self) -> str:
        return _STATUS_LABELS.get(self.rec.status) or self.rec.get_status_display().lower()

    # Closure follows outcomes (issue 16): read only when a gated recommendation could otherwise close.

    @cached_property
    def gate_overridden(self) -> bool:
        """A reviewer recorded an outcome override since the recommendation was last opened."""
        annotated = self._annotated("gate_overridden")
        if annotated is not None:
            return bool(annotated)
        return RecommendationEvent.objects.filter(
            recommendation_id=self.rec.pk, action=Event.OUTCOME_GATE_OVERRIDDEN, at__gte=_opened_at(self.rec)
        ).exists()

    @cached_property
    def outcome_problem(self) -> str | None:
        """What holds a gated recommendation open: the measures below target, named; None when nothing."""
        if not outcomes.is_gated(self.rec) or self.gate_overridden:
            return None
        # A list's rows read their measures together (read_measures_together): no query per row.
        measures = getattr(self.rec, outcomes.GATE_MEASURES, None)
        if measures is None and (together := getattr(self.rec, _TOGETHER, None)) is not None:
            together.load()
            measures = getattr(self.rec, outcomes.GATE_MEASURES, None)
        if measures is None:
            measures = outcomes.load_measures(self.rec)
        return outcomes.gate_problem(self.rec, measures, overridden=False)


# Asked of a list's closed rows each: looked up, not worked out from the field's choices row by row.
_STATUS_LABELS = {value: str(label).lower() for value, label in Recommendation.Status.choices}
_VERDICT = Evidence.Verdict
_EVIDENCE_COUNTS = {
    "live": Count("pk", filter=~Q(verdict=_VERDICT.REJECTED)),
    "live_outcome": Count("pk", filter=~Q(verdict=_VERDICT.REJECTED) & Q(category=Evidence.Category.OUTCOME)),
    "pending": Count("pk", filter=Q(verdict=_VERDICT.PENDING)),
    "accepted": Count("pk", filter=Q(verdict=_VERDICT.ACCEPTED)),
    "accepted_outcome": Count("pk", filter=Q(verdict=_VERDICT.ACCEPTED) & Q(category=Evidence.Category.OUTCOME)),
}


def _opened_at(rec: Recommendation) -> dt.datetime:
    reopened = (
        RecommendationEvent.objects.filter(recommendation_id=rec.pk, action=Event.REOPENED)
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    return reopened or rec.created_at


def involved_user_ids(rec: Recommendation) -> set[int]:
    """Everyone who owned, submitted or evidenced ``rec`` since it was last opened."""
    since = _opened_at(rec)
    ids = set(rec.history.filter(history_date__gte=since).values_list("owner_id", flat=True))
    ids |= set(
        RecommendationEvent.objects.filter(
            recommendation_id=rec.pk, at__gte=since, action__in=_WORK_EVENTS
        ).values_list("actor_id", flat=True)
    )
    ids |= set(
        Evidence.objects.filter(recommendation_id=rec.pk, added_at__gte=since).values_list("added_by_id", flat=True)
    )
    ids.add(rec.owner_id)
    ids.discard(None)
    return ids


# The facts that are the same whoever asks, as the columns the database keeps (tracker.kept): read from the row,
# they cost a list nothing per row. They were seven subqueries a row, a third of the API list's time.
_KEPT_FACTS = {
    "fact_live_evidence": F("evidence_live"),
    "fact_live_outcome": F("evidence_live_outcome"),
    "fact_pending": F("evidence_pending"),
    "fact_accepted": F("evidence_accepted"),
    "fact_accepted_outcome": F("evidence_accepted_outcome"),
    "fact_gate_overridden": F("outcome_gate_overridden"),
}


def with_facts(qs: QuerySet[Recommendation], user: User) -> QuerySet[Recommendation]:
    """Annotate what :class:`Facts` needs, so deciding for a whole page costs no query per row.

    The facts every person shares are the kept columns. Four eyes is asked of the rows only when the person
    ever touched an item (one query of their own few rows, ``ever_involved``): someone who never did the work
    on anything (a reviewer, a lead, a viewer) did none since any item was opened, and building and compiling
    its subqueries was a fifth of the API list's time."""
    qs = qs.annotate(**_KEPT_FACTS)
    if user.pk is not None and not ever_involved(user)[:1]:
        return qs.annotate(fact_involved=Value(False))
    return with_involved(qs, user)


_TOGETHER = "_measures_read_together"


class _Together:
    """The gated rows of one page, whose measures are read in one go when the first of them is asked for."""

    def __init__(self, rows: list[Recommendation]) -> None:
        self.rows = rows

    def load(self) -> None:
        rows, self.rows = self.rows, []
        if rows:
            prefetch_related_objects(rows, outcomes.measures_prefetch())


def read_measures_together(rows: Iterable[Recommendation]) -> None:
    """Let a page of rows read their outcome measures in one go, the first time a decision needs them.

    Only a gated item that could otherwise close reads its measures (``Facts.outcome_problem``), and most pages
    hold none: prefetching every page's measures was a tenth of the API list's time. Without this, each row
    that needs them reads its own."""
    together = _Together([row for row in rows if outcomes.is_gated(row)])
    for row in together.rows:
        setattr(row, _TOGETHER, together)


def with_involved(qs: QuerySet[Recommendation], user: User) -> QuerySet[Recommendation]:
    """Annotate only four eyes' fact, did ``user`` do the work since the item was last opened (``fact_involved``,
    from the kept ``opened_at``), for a caller that asks no other fact (home's inbox)."""
    return qs.annotate(fact_involved=_involved(user.pk))


@lru_cache(maxsize=1024)
def _involved(user_id: int | None) -> Q:
    """Whether this person did the work since the row was last opened (four eyes), built once per person."""
    if user_id is None:
        return Q(pk__isnull=True)
    history = Recommendation.history.model.objects.filter(
        id=OuterRef("pk"), owner_id=user_id, history_date__gte=OuterRef("opened_at")
    )
    work = RecommendationEvent.objects.filter(
        recommendation=OuterRef("pk"), actor_id=user_id, action__in=_WORK_EVENTS, at__gte=OuterRef("opened_at")
    )
    added = Evidence.objects.filter(
        recommendation=OuterRef("pk"), added_by_id=user_id, added_at__gte=OuterRef("opened_at")
    )
    # Each since-opened test is asked only of the few items the person ever did such work on (a set read once
    # from the owner, actor and author indexes), not of every row: a reviewer's home reads every item awaiting.
    ever = reduce(or_, (Q(pk__in=ids) for ids in _ever_worked_on(user_id)))
    # "Owns it now" as the set of their items, not "owner_id = me": a test on the id alone, which an index of the
    # rows' status holds, so testing every item awaiting assurance reads no row (and it is never NULL, as
    # "owner_id = me" is for an unowned row, which would read as "not annotated": four queries for that row).
    owns = Q(pk__in=Recommendation.objects.filter(owner_id=user_id).values("pk"))
    return owns | (ever & (Exists(history) | Exists(work) | Exists(added)))


def _ever_worked_on(user_id: int) -> tuple[QuerySet, ...]:
    """The ids of the items a person ever owned, acted on or added evidence to, each from its own index."""
    return (
        Recommendation.history.model.objects.filter(owner_id=user_id).values_list("id", flat=True),
        RecommendationEvent.objects.filter(actor_id=user_id).values_list("recommendation_id", flat=True),
        Evidence.objects.filter(added_by_id=user_id).values_list("recommendation_id", flat=True),
    )


def ever_involved(user: User) -> QuerySet:
    """The ids of every item four eyes could hold against this person (``fact_involved`` is false for every
    other): those they own or ever owned, acted on or added evidence to, as one set read from those indexes.
    A caller that wants the few items someone is involved in asks ``with_involved`` of these alone."""
    owned = Recommendation.objects.filter(owner_id=user.pk).order_by().values_list("pk", flat=True)
    ever = [ids.order_by() for ids in _ever_worked_on(user.pk)]
    return owned.union(*ever)


# The state guards: each returns None when the action may happen now, else the reason it may not.


def _not_open(facts: Facts, doing: str) -> str | None:
    if facts.is_open:
        return None
    return f"This recommendation is {facts.status_label}; {doing} only while it is open. " + (
        "A governance lead can reopen it." if facts.rec.status == Status.CLOSED else "It has been replaced."
    )


@dataclass(frozen=True)
class Condition:
    """One thing submitting or closing needs, met or not, in the words the guard refuses with.

    ``submit_conditions`` and ``close_conditions`` list them in the order the guards check them; the guard
    refuses with the first one not met, and the pages' checklists show them all, so the two cannot disagree.
    """

    key: str
    label: str  # what is needed, in plain words
    met: bool | None  # None only in a checklist: decided by whoever does it (see closing_checklist)
    reason: str  # the refusal when not met
    done: str = ""  # what the page says when met


def _first_unmet(conditions: Iterator[Condition]) -> str | None:
    """The guard: the first condition not met, and only as many conditions computed as it takes to find it."""
    return next((condition.reason for condition in conditions if not condition.met), None)


def submit_conditions(rec: Recommendation, facts: Facts) -> Iterator[Condition]:
    """What submitting for assurance needs, lazily, in the order the guard checks it."""
    yield Condition(
        "in_progress",
        "Work on it is in progress",
        rec.status == Status.IN_PROGRESS,
        f"Only a recommendation in progress can be submitted for assurance; this one is {facts.status_label}.",
        "It is in progress.",
    )
    counts = facts.evidence
    yield Condition(
        "evidence",
        "Evidence that has not been rejected",
        bool(counts["live"]),
        "Add at least one piece of evidence before submitting for assurance.",
        f"{counts['live']} piece(s) of evidence not rejected.",
    )
    if facts.cause_of_concern:
        yield Condition(
            "outcome_evidence",
            "Evidence of an outcome for children (a cause of concern)",
            bool(counts["live_outcome"]),
            "A cause of concern needs evidence of an outcome for children (for example audited response "
            "times), not only outputs such as training delivered. Add outcome evidence first.",
            f"{counts['live_outcome']} piece(s) of outcome evidence not rejected.",
        )


def submit_problem(rec: Recommendation, facts: Facts) -> str | None:
    return _first_unmet(submit_conditions(rec, facts))


def close_conditions(rec: Recommendation, facts: Facts) -> Iterator[Condition]:
    """What closing needs, lazily, in the order the guard checks it. Four eyes is about ``facts.user``."""
    yield Condition(
        "awaiting_assurance",
        "Submitted for assurance",
        rec.status == Status.AWAITING_ASSURANCE,
        f"Only a recommendation awaiting assurance can be closed; this one is {facts.status_label}.",
        "It awaits assurance.",
    )
    yield Condition(
        "four_eyes",
        "Closed by someone who did none of the work (four eyes)",
        not facts.involved,
        FOUR_EYES_CLOSE,
        "You have not owned, submitted or added evidence to it since it was last opened.",
    )
    counts = facts.evidence
    yield Condition(
        "reviewed",
        "Every piece of evidence has a verdict",
        not counts["pending"],
        f"{counts['pending']} evidence item(s) still await a verdict; accept or reject them before closing.",
        "No evidence awaits a verdict.",
    )
    yield Condition(
        "accepted",
        "At least one piece of evidence accepted",
        bool(counts["accepted"]),
        "At least one piece of evidence must be accepted before closing.",
        f"{counts['accepted']} piece(s) of evidence accepted.",
    )
    if facts.cause_of_concern:
        yield Condition(
            "outcome_accepted",
            "Evidence of an outcome for children accepted (a cause of concern)",
            bool(counts["accepted_outcome"]),
            "A cause of concern can only be closed with accepted evidence of an outcome for children.",
            f"{counts['accepted_outcome']} piece(s) of outcome evidence accepted.",
        )
    if outcomes.is_gated(rec):  # issue 16: closure follows outcomes
        problem = facts.outcome_problem
        yield Condition(
            "outcomes",
            "Its outcome measures at target for the required periods, or an override recorded",
            problem is None,
            problem or "",
            "Its outcome measures are at target, or a reviewer recorded an override.",
        )


def close_problem(rec: Recommendation, facts: Facts) -> str | None:
    return _first_unmet(close_conditions(rec, facts))


def submit_checklist(user: User, rec: Recommendation, facts: Facts | None = None) -> list[Condition]:
    """Every condition submitting needs, met or not: what the submit page names."""
    return list(submit_conditions(rec, facts or Facts(rec, user)))


def closing_checklist(user: User, rec: Recommendation, facts: Facts | None = None) -> list[Condition]:
    """Every condition closing needs, met or not: the recommendation and decision pages' checklist.

    Four eyes is about whoever closes it. For someone whose role may close, it is about them; for anyone
    else (the owner, a viewer) it is neither met nor not yet, and names who is ruled out.
    """
    items = list(close_conditions(rec, facts or Facts(rec, user)))
    if role_allows(user, Action.CLOSE, rec):
        return items
    ruled_out = ", ".join(str(person) for person in get_user_model().objects.filter(pk__in=involved_user_ids(rec)))
    for_others = (
        "An assurance reviewer or governance lead closes it: someone who has not owned, submitted or added "
        "evidence to it since it was last opened." + (f" Ruled out now: {ruled_out}." if ruled_out else "")
    )
    return [
        Condition(item.key, item.label, None, for_others, for_others) if item.key == "four_eyes" else item
        for item in items
    ]


def _review_evidence_problem(rec: Recommendation, facts: Facts) -> str | None:
    problem = _not_open(facts, "its evidence can be given a verdict")
    if problem:
        return problem
    if facts.involved:
        return FOUR_EYES_EVIDENCE
    if not facts.evidence["pending"]:
        return "No evidence on this recommendation awaits a verdict."
    return None


def _return_problem(rec: Recommendation, facts: Facts) -> str | None:
    if rec.status != Status.AWAITING_ASSURANCE:
        return "Only a recommendation awaiting assurance can be returned to its owner."
    return None


def _reopen_problem(rec: Recommendation, facts: Facts) -> str | None:
    if rec.status != Status.CLOSED:
        return "Only a closed recommendation can be reopened."
    return None


# Issue 16: outcome gating and its override.


def _set_outcome_gated_problem(rec: Recommendation, facts: Facts) -> str | None:
    problem = _not_open(facts, "whether it closes on outcomes can be changed")
    if problem:
        return problem
    if facts.cause_of_concern:
        return "A cause of concern always closes on its outcomes; that cannot be changed."
    return None


def _override_problem(rec: Recommendation, facts: Facts) -> str | None:
    if rec.status != Status.AWAITING_ASSURANCE:
        return (
            "An outcome override is recorded at assurance: only for a recommendation awaiting assurance; "
            f"this one is {facts.status_label}."
        )
    if not outcomes.is_gated(rec):
        return "This recommendation does not close on outcomes, so there is nothing to override."
    if facts.involved:
        return FOUR_EYES_OVERRIDE
    if facts.gate_overridden:
        return "An outcome override is already recorded for this recommendation since it was last opened."
    if facts.outcome_problem is None:
        return "Its outcome measures are at target: it can close without an override."
    return None


_STATE_RULES = {
    Action.VIEW: lambda rec, facts: None,
    Action.UPDATE: lambda rec, facts: _not_open(facts, "progress can be posted"),
    Action.ADD_EVIDENCE: lambda rec, facts: _not_open(facts, "evidence can be added"),
    Action.SUBMIT: submit_problem,
    Action.REVIEW_EVIDENCE: _review_evidence_problem,
    Action.CLOSE: close_problem,
    Action.RETURN: _return_problem,
    Action.REOPEN: _reopen_problem,
    Action.REASSIGN: lambda rec, facts: _not_open(facts, "its owner can be changed"),
    Action.CHANGE_TARGET_DATE: lambda rec, facts: _not_open(facts, "its target date can be changed"),
    Action.CHANGE_REVIEW_INTERVAL: lambda rec, facts: _not_open(facts, "its review interval can be changed"),
    Action.SUPERSEDE: lambda rec, facts: _not_open(facts, "it can be superseded"),
    Action.EDIT: lambda rec, facts: _not_open(facts, "its wording can be changed"),
    Action.SET_RAG: lambda rec, facts: _not_open(facts, "its RAG rating can be set"),
    **{  # issue 16
        Action.MANAGE_PLAN: lambda rec, facts: _not_open(facts, "its action plan can be changed"),
        Action.UPDATE_PLAN_ACTION: lambda rec, facts: _not_open(facts, "its plan actions can be updated"),
        Action.MANAGE_MEASURES: lambda rec, facts: _not_open(facts, "outcome measures can be added"),
        Action.ENTER_MEASURE_DATA: lambda rec, facts: _not_open(facts, "outcome data can be entered"),
        Action.SET_OUTCOME_GATED: lambda rec, facts: _set_outcome_gated_problem(rec, facts),
        Action.OVERRIDE_OUTCOME_GATE: lambda rec, facts: _override_problem(rec, facts),
    },
}
assert set(_STATE_RULES) == set(Action), "every action needs a state rule"


def decide(
    user: User, rec: Recommendation, action: Action, facts: Facts | None = None, item: object | None = None
) -> Decision:
    """May ``user`` do ``action`` to ``rec`` now? Role first, then the state of the recommendation.

    ``item``: the plan action or measure, for the actions its own owner or supplier may take
    (``permissions.role_allows``); the state rules are the recommendation's either way.
    """
    if not role_allows(user, action, rec, item):
        return _refused_by_role(action)
    return _by_state(rec, action, facts or Facts(rec, user))


def _refused_by_role(action: Action) -> Decision:
    return _REFUSED_BY_ROLE[action]


def _by_state(rec: Recommendation, action: Action, facts: Facts) -> Decision:
    problem = _STATE_RULES[action](rec, facts)
    return _ALLOWED[action] if problem is None else Decision(action, False, problem)


# A decision is frozen, so the ones that carry nothing of the row are made once: a page of 50 rows asks for
# a thousand decisions, most of them these.
_ALLOWED = {action: Decision(action, True) for action in Action}
_REFUSED_BY_ROLE = {action: Decision(action, False, role_refusal(action), by_role=True) for action in Action}


def decisions(
    user: User, rec: Recommendation, facts: Facts | None = None, actions: Iterable[Action] = Action
) -> dict[Action, Decision]:
    """``decide`` for every action (or only ``actions``): the same answers, with the role half asked once per row."""
    user = permissions.concrete(user)
    facts = facts or Facts(rec, user)
    by_role = permissions.actions_role_allows(user, rec)
    return {
        action: _by_state(rec, action, facts) if action in by_role else _refused_by_role(action) for action in actions
    }


def allowed_actions(user: User, rec: Recommendation) -> set[Action]:
    return {action for action, decision in decisions(user, rec).items() if decision.allowed}


def require(user: User, action: Action, rec: Recommendation, item: object | None = None) -> None:
    """Raise ``NotPermitted`` (by role) or ``WorkflowError`` (by state) unless the action may happen now."""
    decide(user, rec, action, item=item).raise_if_refused()


def require_role(user: User, action: Action, rec: Recommendation, item: object | None = None) -> None:
    """Only the role half: for checks made before the row is locked (the state is checked after)."""
    if not role_allows(user, action, rec, item):
        raise NotPermitted(role_refusal(action))


# An inspection's dates (the action plan and the revisit): not a recommendation's action, so not in
# ``Action`` (whose every member is asked of each recommendation), but decided here all the same.

UNTRACKED_DATES = "This inspection is kept as history and is not tracked, so it has no action plan or revisit to date."


def decide_inspection_dates(user: User, inspection: Inspection) -> Decision:
    """May ``user`` set or move ``inspection``'s action plan and revisit dates now? Role, then state."""
    action = permissions.SET_INSPECTION_DATES
    if not permissions.may_set_inspection_dates(user, inspection):
        return Decision(action, False, permissions.SET_INSPECTION_DATES_REFUSAL, by_role=True)
    if not inspection.tracked:
        return Decision(action, False, UNTRACKED_DATES)
    return Decision(action, True)
