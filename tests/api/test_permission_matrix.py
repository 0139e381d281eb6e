"""Every endpoint x method x role: the answer each persona gets, and that a refusal changes nothing.

Roles: anonymous; vic (viewer); olly (owns the recommendation); otto (an owner, of something else);
rita (assurance reviewer); lead (governance lead); mallory (governance lead of another organisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import transaction

from tests.api.conftest import set_state
from tests.factories import RecommendationFactory
from tracker.models import Evidence, ProgressUpdate, Recommendation, RecommendationEvent

ROLES = ["anonymous", "vic", "olly", "otto", "rita", "lead", "mallory"]
IN_ORG = ["vic", "olly", "otto", "rita", "lead"]
SEES_REC = ["vic", "olly", "rita", "lead"]  # otto owns something else; mallory is elsewhere


def answers(default: int, **by_role: int) -> dict[str, int]:
    table = dict.fromkeys(ROLES, default)
    table["anonymous"] = 401
    table.update(by_role)
    return table


@dataclass
class World:
    rec: Recommendation
    evidence: Evidence
    update: ProgressUpdate
    reminder_id: int
    replacement: Recommendation
    users: dict


@dataclass
class Case:
    name: str
    method: str
    path: Callable[[World], str]
    expected: dict[str, int]
    body: Callable[[World], dict] = lambda w: {}
    state: str | None = None  # put the recommendation in this state first
    listed: Callable[[World], int] | None = None  # for lists: the world's object that should or should not show
    seen_by: list[str] = field(default_factory=list)


def v(w: World) -> int:
    return w.rec.version


LISTS = [
    ("organisations", lambda w: w.rec.finding.inspection.organisation_id, IN_ORG, {}),
    ("inspections", lambda w: w.rec.finding.inspection_id, IN_ORG, {}),
    ("findings", lambda w: w.rec.finding_id, IN_ORG, {}),
    ("recommendations", lambda w: w.rec.pk, SEES_REC, {}),
    ("updates", lambda w: w.update.pk, SEES_REC, {}),
    ("evidence", lambda w: w.evidence.pk, SEES_REC, {}),
    ("reminders", lambda w: w.reminder_id, ["lead"], {"vic": 403, "olly": 403, "otto": 403, "rita": 403}),
]


def _cases() -> list[Case]:
    cases: list[Case] = []
    for name, pk, seers, refusals in LISTS:
        detail = {role: (200 if role in seers else 404) for role in ROLES if role != "anonymous"}
        cases.append(
            Case(
                f"list {name}",
                "get",
                lambda w, n=name: f"/api/{n}/",
                answers(200, **refusals),
                listed=pk,
                seen_by=seers,
            )
        )
        cases.append(
            Case(
                f"get {name}",
                "get",
                lambda w, n=name, p=pk: f"/api/{n}/{p(w)}/",
                answers(200, **{**detail, **refusals}),
            )
        )
        # Nothing is deleted or replaced wholesale, and read-only collections take no POST.
        for method in ("put", "delete"):
            cases.append(
                Case(f"{method} {name}", method, lambda w, n=name, p=pk: f"/api/{n}/{p(w)}/", answers(405, **refusals))
            )
        for method in ("put", "patch", "delete"):
            cases.append(
                Case(f"{method} {name} list", method, lambda w, n=name: f"/api/{n}/", answers(405, **refusals))
            )
        if name not in ("updates", "evidence"):
            cases.append(Case(f"post {name}", "post", lambda w, n=name: f"/api/{n}/", answers(405, **refusals)))
        if name != "recommendations":
            cases.append(
                Case(f"patch {name}", "patch", lambda w, n=name, p=pk: f"/api/{n}/{p(w)}/", answers(405, **refusals))
            )
        cases.append(
            Case(f"post {name} item", "post", lambda w, n=name, p=pk: f"/api/{n}/{p(w)}/", answers(405, **refusals))
        )

    rec_url = lambda action: lambda w: f"/api/recommendations/{w.rec.pk}/{action}/"  # noqa: E731
    hidden = {"otto": 404, "mallory": 404}
    lead_only = answers(403, lead=200, **hidden)
    writes = [
        Case("patch recommendation", "patch", lambda w: f"/api/recommendations/{w.rec.pk}/", lead_only,
             body=lambda w: {"version": v(w), "title": "Locate missing children promptly"}),
        Case("submit", "post", rec_url("submit"), answers(403, lead=200, olly=200, **hidden),
             body=lambda w: {"version": v(w)}),
        Case("accept", "post", rec_url("accept"), answers(403, lead=200, rita=200, **hidden),
             body=lambda w: {"version": v(w)}, state="awaiting_assurance"),
        Case("reject", "post", rec_url("reject"), answers(403, lead=200, rita=200, **hidden),
             body=lambda w: {"version": v(w), "reason": "No outcome evidence"}, state="awaiting_assurance"),
        Case("reopen", "post", rec_url("reopen"), lead_only,
             body=lambda w: {"version": v(w), "reason": "Missing-child audit found repeat failings"}, state="closed"),
        Case("supersede", "post", rec_url("supersede"), lead_only,
             body=lambda w: {"version": v(w), "replacement": w.replacement.pk, "reason": "Merged into CC2"}),
        Case("change target date", "post", rec_url("change-target-date"), lead_only,
             body=lambda w: {"version": v(w), "target_date": "2027-03-31", "reason": "Agreed at board"}),
        Case("assign owner", "post", rec_url("assign-owner"), lead_only,
             body=lambda w: {"version": v(w), "owner": w.users["otto"].pk, "reason": "Moved portfolio"}),
        Case("change review interval", "post", rec_url("change-review-interval"), lead_only,
             body=lambda w: {"version": v(w), "review_interval_days": 14}),
        # A recommendation the user cannot see is, to them, one that does not exist: a 400 on that field.
        Case("post update", "post", lambda w: "/api/updates/", answers(403, lead=201, olly=201, otto=400, mallory=400),
             body=lambda w: {"recommendation": w.rec.pk, "narrative": "Audit done", "version": v(w)}),
        Case("post evidence", "post", lambda w: "/api/evidence/", answers(403, lead=201, olly=201, otto=400, mallory=400),
             body=lambda w: {"recommendation": w.rec.pk, "kind": "note", "category": "outcome",
                             "description": "Audit of missing-child response times", "note": "Median 40 minutes",
                             "version": v(w)}),
        Case("accept evidence", "post", lambda w: f"/api/evidence/{w.evidence.pk}/accept/",
             answers(403, lead=200, rita=200, **hidden)),
        Case("reject evidence", "post", lambda w: f"/api/evidence/{w.evidence.pk}/reject/",
             answers(403, lead=200, rita=200, **hidden), body=lambda w: {"reason": "Output, not outcome"}),
    ]  # fmt: skip
    cases += writes
    # Actions on one object are POST only.
    for case in writes:
        if case.method == "post" and case.name not in ("post update", "post evidence"):
            cases += [
                Case(f"{method} {case.name}", method, case.path, answers(405))
                for method in ("get", "put", "patch", "delete")
            ]
    return cases


CASES = _cases()


@pytest.fixture
def world(in_progress, reminder, request, olly, otto, vic, rita, lead, mallory):
    replacement = RecommendationFactory(finding__inspection__organisation=in_progress.finding.inspection.organisation,
                                        owner=olly)  # fmt: skip
    RecommendationFactory(finding__inspection__organisation=in_progress.finding.inspection.organisation, owner=otto)
    users = {"vic": vic, "olly": olly, "otto": otto, "rita": rita, "lead": lead, "mallory": mallory}
    return World(
        rec=in_progress,
        evidence=in_progress.evidence.get(),
        update=in_progress.updates.get(),
        reminder_id=reminder.pk,
        replacement=replacement,
        users=users,
    )


def _snapshot(rec: Recommendation) -> tuple:
    rec.refresh_from_db()
    return (
        rec.version,
        rec.status,
        RecommendationEvent.objects.count(),
        ProgressUpdate.objects.count(),
        Evidence.objects.count(),
        tuple(Evidence.objects.values_list("verdict", flat=True)),
    )


def _problems(case: Case, role: str, world: World, client) -> list[str]:
    """What is wrong with one role's answer to one case; empty when it is right."""
    before = _snapshot(world.rec)
    response = getattr(client, case.method)(case.path(world), case.body(world), format="json")
    expected = case.expected[role]
    if response.status_code != expected:
        return [f"{role}: expected {expected}, got {response.status_code} {response.content[:200]!r}"]
    problems = []
    if expected >= 400:
        if not response["Content-Type"].startswith("application/json") or not response.json().get("detail"):
            problems.append(f"{role}: a refusal without a JSON reason")
        if _snapshot(world.rec) != before:
            problems.append(f"{role}: a refused request changed something")
    elif case.method != "get" and _snapshot(world.rec) == before:
        problems.append(f"{role}: an accepted write changed nothing")
    if case.listed and expected == 200:
        ids = [item["id"] for item in response.json()["results"]]
        if (case.listed(world) in ids) != (role in case.seen_by):
            problems.append(f"{role}: the list {'hides' if role in case.seen_by else 'shows'} the object")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_role_gets_the_answer_its_rules_give(case, world, client_for, lead):
    if case.state == "awaiting_assurance":
        Evidence.objects.filter(recommendation=world.rec).update(verdict=Evidence.Verdict.ACCEPTED, reviewed_by=lead)
    if case.state:
        set_state(world.rec, case.state)
    problems = []
    for role in ROLES:
        # Each role starts from the same world: whatever one role's request changed is rolled back.
        savepoint = transaction.savepoint()
        problems += _problems(case, role, world, client_for(world.users.get(role)))
        transaction.savepoint_rollback(savepoint)
        world.rec.refresh_from_db()
    assert not problems, "\n".join([case.name, *problems])
