"""The staff pages ask the one rule (``tracker.policy``): links, action pages and their refusals agree with it.

Also: dates are GOV.UK date inputs that never change stored data when they are wrong, owners are only
the eligible ones, and a recommendation that is no longer open shows how it ended.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.factories import EvidenceFactory, RecommendationFactory, UserFactory
from tests.web.dates import date_post_data, target_date_post_data
from tracker import policy, workflow
from tracker.models import Evidence, Recommendation, RecommendationEvent
from tracker.permissions import Action, Role

pytestmark = pytest.mark.django_db

Status = Recommendation.Status

# The actions the recommendation page offers as links; the others are done in the admin.
PAGE_ACTIONS = {
    Action.UPDATE,
    Action.ADD_EVIDENCE,
    Action.SUBMIT,
    Action.REVIEW_EVIDENCE,
    Action.CLOSE,
    Action.RETURN,
    Action.REOPEN,
    Action.REASSIGN,
    Action.CHANGE_TARGET_DATE,
    Action.SET_RAG,
    # Issue 16: the plan and outcome links (tracker/templates/tracker/includes/measures.html and plan.html).
    Action.MANAGE_PLAN,
    Action.MANAGE_MEASURES,
    Action.SET_OUTCOME_GATED,
    Action.OVERRIDE_OUTCOME_GATE,
}
STATES = [
    "not started",
    "in progress without evidence",
    "in progress with evidence",
    "awaiting assurance with pending evidence",
    "awaiting assurance with accepted evidence",
    "closed",
    "superseded",
]
PERSONAS = ["lead", "rita", "olly", "otto", "vic"]


def _bring_to(state: str, rec: Recommendation, people: dict) -> Recommendation:
    """Walk olly's recommendation to ``state`` through the workflow, as people would."""
    olly, rita, lead = people["olly"], people["rita"], people["lead"]
    steps = STATES.index(state)
    if state == "superseded":
        workflow.post_update(rec, by=olly, narrative="Started")
        replacement = RecommendationFactory(finding__inspection=rec.finding.inspection, title="The new plan")
        workflow.supersede(rec, by=lead, replacement=replacement, reason="Folded into the new plan")
        rec.refresh_from_db()
        return rec
    if steps >= 1:
        workflow.post_update(rec, by=olly, narrative="Started")
    if steps >= 2:
        workflow.add_evidence(rec, by=olly, kind="note", category="outcome", description="Audit", note="Times fell")
    if steps >= 3:
        workflow.submit_for_assurance(rec, by=olly)
    if steps >= 4:
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    if steps >= 5:
        workflow.close(rec, by=rita, reason="Audit shows it works")
    rec.refresh_from_db()
    return rec


@pytest.fixture
def people(lead, rita, olly, otto, vic):
    return {"lead": lead, "rita": rita, "olly": olly, "otto": otto, "vic": vic}


def _offered(html: str, rec: Recommendation) -> set[Action]:
    """The actions the page links to, read from the links themselves."""
    base = f"/recommendations/{rec.pk}/"
    by_path = {
        "update/": Action.UPDATE,
        "evidence/": Action.ADD_EVIDENCE,
        "evidence/?category=outcome": Action.ADD_EVIDENCE,  # the checklists' "Add outcome evidence"
        "submit/": Action.SUBMIT,
        "decision/?decision=close": Action.CLOSE,
        "decision/?decision=reject": Action.RETURN,
        "reopen/": Action.REOPEN,
        "owner/": Action.REASSIGN,
        "target-date/": Action.CHANGE_TARGET_DATE,
        "rag/": Action.SET_RAG,
        "plan/add/": Action.MANAGE_PLAN,
        "measures/add/": Action.MANAGE_MEASURES,
        "outcome-gated/": Action.SET_OUTCOME_GATED,
        "outcome-override/": Action.OVERRIDE_OUTCOME_GATE,
    }
    offered = set()
    for href in re.findall(r'href="([^"]+)"', html):
        href = href.replace("&amp;", "&")
        if not href.startswith(base):
            continue
        rest = href[len(base) :]
        if re.fullmatch(r"evidence/\d+/review/", rest):
            offered.add(Action.REVIEW_EVIDENCE)
        elif rest in by_path:
            offered.add(by_path[rest])
        else:
            assert rest in ("", "#evidence") or rest.startswith("#evidence-"), f"unexpected link {href}"
    return offered


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_the_page_links_exactly_the_actions_the_policy_allows(client, rec, people, state, persona):
    rec = _bring_to(state, rec, people)
    user = people[persona]
    client.force_login(user)
    response = client.get(rec.get_absolute_url())
    decided = policy.decisions(user, rec)
    if not decided[Action.VIEW]:
        assert response.status_code == 404
        return
    html = response.content.decode()
    assert _offered(html, rec) == policy.allowed_actions(user, rec) & PAGE_ACTIONS
    for action in PAGE_ACTIONS:
        decision = decided[action]
        if not decision.allowed and not decision.by_role:
            assert escape(decision.reason) in html, (action, "a state refusal is explained")
        if decision.by_role:
            assert escape(decision.reason) not in html, (action, "a role refusal is not shown")


def _page_urls(rec: Recommendation) -> dict[str, tuple[Action, ...]]:
    urls = {
        reverse("tracker:update", args=[rec.pk]): (Action.UPDATE,),
        reverse("tracker:add-evidence", args=[rec.pk]): (Action.ADD_EVIDENCE,),
        reverse("tracker:submit", args=[rec.pk]): (Action.SUBMIT,),
        reverse("tracker:decide", args=[rec.pk]): (Action.CLOSE, Action.RETURN),
        reverse("tracker:reopen", args=[rec.pk]): (Action.REOPEN,),
        reverse("tracker:reassign", args=[rec.pk]): (Action.REASSIGN,),
        reverse("tracker:target-date", args=[rec.pk]): (Action.CHANGE_TARGET_DATE,),
        reverse("tracker:rag", args=[rec.pk]): (Action.SET_RAG,),
        reverse("tracker:plan-add", args=[rec.pk]): (Action.MANAGE_PLAN,),
        reverse("tracker:measure-add", args=[rec.pk]): (Action.MANAGE_MEASURES,),
        reverse("tracker:outcome-gated", args=[rec.pk]): (Action.SET_OUTCOME_GATED,),
        reverse("tracker:outcome-override", args=[rec.pk]): (Action.OVERRIDE_OUTCOME_GATE,),
    }
    pending = rec.evidence.filter(verdict=Evidence.Verdict.PENDING).first()
    if pending:
        urls[reverse("tracker:review-evidence", args=[rec.pk, pending.pk])] = (Action.REVIEW_EVIDENCE,)
    return urls


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("persona", ["lead", "rita", "olly", "vic"])
def test_every_action_page_opens_exactly_when_the_policy_allows(client, rec, people, state, persona):
    rec = _bring_to(state, rec, people)
    user = people[persona]
    client.force_login(user)
    for url, actions in _page_urls(rec).items():
        decided = [policy.decide(user, rec, action) for action in actions]
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"version": rec.version} if method == "post" else {})
            html = response.content.decode()
            if any(decided):
                assert response.status_code in (200, 302), (url, method)
                continue
            if all(d.by_role for d in decided):
                assert response.status_code == 403, (url, method)
                assert escape(decided[0].reason) in html
                continue
            assert response.status_code == 409, (url, method)
            assert escape(next(d.reason for d in decided if not d.by_role)) in html
            assert "<form" not in html.split('id="main-content"')[1], "a state refusal is not a form"
            assert f'href="{rec.get_absolute_url()}"' in html
        rec.refresh_from_db()


def test_a_closed_recommendation_offers_only_reopen_and_only_to_a_lead(client, rec, people):
    rec = _bring_to("closed", rec, people)
    for persona in ("lead", "rita", "olly", "vic"):
        client.force_login(people[persona])
        html = client.get(rec.get_absolute_url()).content.decode()
        assert _offered(html, rec) == ({Action.REOPEN} if persona == "lead" else set()), persona


def test_submitting_with_no_evidence_says_why_beside_the_action(client, rec, people):
    rec = _bring_to("in progress without evidence", rec, people)
    client.force_login(people["olly"])
    html = client.get(rec.get_absolute_url()).content.decode()
    assert "Submit for assurance</dt>" in html
    assert "Add at least one piece of evidence before submitting for assurance." in html
    assert Action.SUBMIT not in _offered(html, rec)


def test_posting_to_a_page_the_state_refuses_changes_nothing(client, rec, people):
    rec = _bring_to("closed", rec, people)
    before = (rec.version, rec.status, RecommendationEvent.objects.count())
    client.force_login(people["olly"])
    response = client.post(
        reverse("tracker:update", args=[rec.pk]), {"narrative": "After closure", "version": rec.version}
    )
    assert response.status_code == 409
    assert "progress can be posted only while it is open" in response.content.decode()
    rec.refresh_from_db()
    assert (rec.version, rec.status, RecommendationEvent.objects.count()) == before


def test_the_decision_page_offers_return_but_says_why_it_cannot_close_yet(client, rec, people):
    rec = _bring_to("awaiting assurance with pending evidence", rec, people)
    client.force_login(people["rita"])
    url = reverse("tracker:decide", args=[rec.pk])
    html = client.get(url).content.decode()
    assert 'value="reject"' in html and 'value="close"' not in html
    assert "You cannot close it yet. 1 evidence item(s) still await a verdict" in html
    forged = client.post(url, {"decision": "close", "version": rec.version})
    assert "1 evidence item(s) still await a verdict" in forged.content.decode()
    rec.refresh_from_db()
    assert rec.status == Status.AWAITING_ASSURANCE


def test_the_decision_link_preselects_the_decision(client, rec, people):
    rec = _bring_to("awaiting assurance with accepted evidence", rec, people)
    client.force_login(people["rita"])
    html = client.get(reverse("tracker:decide", args=[rec.pk]) + "?decision=close").content.decode()
    assert re.search(r'value="close"\s+checked', html)


def test_the_evidence_review_page_gives_the_four_eyes_reason(client, lead, rec):
    workflow.assign_owner(rec, by=lead, owner=lead)
    workflow.post_update(rec, by=lead, narrative="Started")
    item = workflow.add_evidence(rec, by=lead, kind="note", category="outcome", description="A", note="B")
    workflow.submit_for_assurance(rec, by=lead)
    client.force_login(lead)
    response = client.get(reverse("tracker:review-evidence", args=[rec.pk, item.pk]))
    assert response.status_code == 409
    assert escape(policy.FOUR_EYES_EVIDENCE) in response.content.decode()


def test_an_evidence_item_already_given_a_verdict_is_not_offered_again(client, rec, people):
    rec = _bring_to("awaiting assurance with accepted evidence", rec, people)
    EvidenceFactory(recommendation=rec, added_by=people["olly"])  # another item still pending
    item = rec.evidence.get(verdict=Evidence.Verdict.ACCEPTED)
    client.force_login(people["rita"])
    response = client.get(reverse("tracker:review-evidence", args=[rec.pk, item.pk]))
    assert response.status_code == 409
    assert "This evidence has already been accepted." in response.content.decode()


# The update page.


def test_the_update_page_offers_to_submit_only_when_the_submit_rule_would_allow_it(client, rec, people):
    url = reverse("tracker:update", args=[rec.pk])
    label = "Also submit this recommendation for assurance"
    client.force_login(people["olly"])
    assert label not in client.get(url).content.decode()  # no evidence yet
    EvidenceFactory(recommendation=rec, category=Evidence.Category.OUTCOME, added_by=people["olly"])
    assert label in client.get(url).content.decode()  # not started, but this update starts it
    client.force_login(people["lead"])
    assert label in client.get(url).content.decode()
    Recommendation.objects.filter(pk=rec.pk).update(status=Status.AWAITING_ASSURANCE)
    assert label not in client.get(url).content.decode()


def test_update_and_submit_together(client, rec, people):
    EvidenceFactory(recommendation=rec, category=Evidence.Category.OUTCOME, added_by=people["olly"])
    client.force_login(people["olly"])
    response = client.post(
        reverse("tracker:update", args=[rec.pk]),
        {"narrative": "Audit done", "submit_for_assurance": "on", "version": rec.version},
    )
    assert response.status_code == 302
    rec.refresh_from_db()
    assert rec.status == Status.AWAITING_ASSURANCE


@pytest.mark.parametrize("days_from_today", [-10, 0, 10])
def test_completing_a_review_hint_says_the_true_next_date(client, rec, people, days_from_today):
    today = timezone.localdate()
    Recommendation.objects.filter(pk=rec.pk).update(next_review_due=today + dt.timedelta(days=days_from_today))
    rec.refresh_from_db()
    client.force_login(people["olly"])
    html = client.get(reverse("tracker:update", args=[rec.pk])).content.decode()
    moved_to = workflow.next_review_after_completion(rec)
    assert moved_to == max(today, rec.next_review_due) + dt.timedelta(days=rec.review_interval_days)
    assert f"The next review will then be due on {moved_to:%-d %B %Y}" in html
    client.post(
        reverse("tracker:update", args=[rec.pk]),
        {"narrative": "Reviewed", "review_completed": "on", "version": rec.version},
    )
    rec.refresh_from_db()
    assert rec.next_review_due == moved_to


# Dates.


def _snapshot(rec: Recommendation) -> tuple:
    rec.refresh_from_db()
    return rec.version, rec.target_date, rec.owner_id, RecommendationEvent.objects.filter(recommendation=rec).count()


@pytest.fixture
def dated(rec, lead):
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 3, 31))
    rec.refresh_from_db()
    return rec


def test_the_target_date_page_uses_the_govuk_date_input(client, lead, dated):
    client.force_login(lead)
    html = client.get(reverse("tracker:target-date", args=[dated.pk])).content.decode()
    assert '<fieldset class="govuk-fieldset" role="group" aria-describedby="id_target_date-hint">' in html
    assert '<div id="id_target_date-hint" class="govuk-hint">For example, 31 3 2027</div>' in html
    for part, value, width in (("day", "31", 2), ("month", "3", 2), ("year", "2027", 4)):
        box = re.search(rf'<input type="text" name="target_date-{part}"[^>]*>', html).group(0)
        assert f'value="{value}"' in box and f'id="id_target_date-{part}"' in box
        assert 'inputmode="numeric"' in box
        assert f"govuk-input govuk-date-input__input govuk-input--width-{width}" in box
        assert f'<label class="govuk-label govuk-date-input__label" for="id_target_date-{part}">' in html
    assert html.count('class="govuk-date-input"') == 1


@pytest.mark.parametrize(
    ("typed", "message", "marked"),
    [
        (("31", "2", "2027"), "Target date must be a real date", ["day"]),
        (("1", "13", "2027"), "Target date must be a real date", ["month"]),
        (("x", "3", "2027"), "Target date must be a real date", ["day"]),
        (("31", "3", "20277"), "Target date year must include 4 numbers", ["year"]),
        (("31", "3", ""), "Target date must include a year", ["year"]),
        (("", "", "2027"), "Target date must include a day and month", ["day", "month"]),
        (
            ("31", "3", "1999"),
            "Target date must be between 1 January 2000 and 31 December 2099",
            ["day", "month", "year"],
        ),
        (("", "", ""), "Enter the target date, or choose to remove it", ["day", "month", "year"]),
    ],
)
def test_a_wrong_or_empty_target_date_is_refused_and_nothing_changes(client, lead, dated, typed, message, marked):
    before = _snapshot(dated)
    client.force_login(lead)
    response = client.post(
        reverse("tracker:target-date", args=[dated.pk]),
        {**target_date_post_data(typed, reason="Moved"), "version": dated.version},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<a href="#id_target_date-{marked[0]}">{message}</a>' in html  # the error summary
    assert f'<span class="govuk-visually-hidden">Error:</span> {message}</p>' in html  # beside the field
    for part in ("day", "month", "year"):
        box = re.search(rf'<input type="text" name="target_date-{part}"[^>]*>', html).group(0)
        assert ("govuk-input--error" in box) == (part in marked), part
    assert _snapshot(dated) == before


def test_a_first_target_date_can_be_set_without_a_reason_and_an_empty_one_is_refused(client, lead, rec):
    client.force_login(lead)
    url = reverse("tracker:target-date", args=[rec.pk])
    html = client.get(url).content.decode()
    assert "Remove the target date" not in html  # nothing to remove
    empty = client.post(url, {**date_post_data("target_date", None), "version": rec.version})
    assert "Enter the target date" in empty.content.decode()
    client.post(url, {**date_post_data("target_date", dt.date(2027, 3, 31)), "version": rec.version})
    rec.refresh_from_db()
    assert rec.target_date == dt.date(2027, 3, 31)


def test_choosing_neither_change_nor_remove_is_an_error(client, lead, dated):
    before = _snapshot(dated)
    client.force_login(lead)
    data = {**date_post_data("target_date", dt.date(2028, 1, 1)), "reason": "Later", "version": dated.version}
    html = client.post(reverse("tracker:target-date", args=[dated.pk]), data).content.decode()
    assert "Select whether to change or remove the target date" in html
    assert _snapshot(dated) == before


def test_removing_the_target_date_needs_a_reason(client, lead, dated):
    client.force_login(lead)
    url = reverse("tracker:target-date", args=[dated.pk])
    before = _snapshot(dated)
    refused = client.post(url, {"choice": "remove", "reason": " ", "version": dated.version})
    assert "Give a reason for removing the target date" in refused.content.decode()
    assert _snapshot(dated) == before
    done = client.post(
        url,
        # What is left in the date boxes does not matter when removing.
        {
            "choice": "remove",
            **date_post_data("target_date", ("31", "2", "")),
            "reason": "Plan replaced",
            "version": dated.version,
        },
    )
    assert done.status_code == 302
    dated.refresh_from_db()
    assert dated.target_date is None and dated.version == before[0] + 1
    event = dated.events.latest("at")
    assert (event.action, event.reason) == (RecommendationEvent.Action.TARGET_DATE_CHANGED, "Plan replaced")


# Owners.


def test_the_change_owner_page_offers_only_eligible_owners(client, lead, rita, olly, otto, vic, mallory, rec):
    gone = UserFactory(username="gone", organisation=lead.organisation, roles=[Role.OWNER], is_active=False)
    client.force_login(lead)
    html = client.get(reverse("tracker:reassign", args=[rec.pk])).content.decode()
    offered = set(re.findall(r'<option value="(\d+)"', html))
    assert offered == {str(u.pk) for u in (lead, olly, otto)}
    assert not offered & {str(u.pk) for u in (rita, vic, mallory, gone)}


@pytest.mark.parametrize("persona", ["rita", "vic", "mallory", "gone"])
def test_a_forged_owner_who_may_not_own_it_is_refused_and_nothing_changes(
    client, lead, rita, vic, mallory, rec, persona
):
    people = {"rita": rita, "vic": vic, "mallory": mallory}
    people["gone"] = UserFactory(username="gone", organisation=lead.organisation, roles=[Role.OWNER], is_active=False)
    before = _snapshot(rec)
    client.force_login(lead)
    response = client.post(
        reverse("tracker:reassign", args=[rec.pk]), {"owner": people[persona].pk, "version": rec.version}
    )
    assert response.status_code == 200
    assert "Choose the new owner from the list: only active owners and governance leads" in response.content.decode()
    assert _snapshot(rec) == before


# How it ended.


def test_an_open_recommendation_shows_its_review_and_target_as_the_model_judges_them(client, rec, people):
    today = timezone.localdate()
    client.force_login(people["vic"])
    for due, target, tags in (
        (today - dt.timedelta(days=1), today - dt.timedelta(days=1), {"Overdue", "Target missed"}),
        (today + dt.timedelta(days=2), today, {"Due soon"}),
        (today + dt.timedelta(days=60), None, set()),
    ):
        Recommendation.objects.filter(pk=rec.pk).update(next_review_due=due, target_date=target)
        rec.refresh_from_db()
        assert rec.review_state(today) in ("overdue", "due_soon", "later")
        html = client.get(rec.get_absolute_url()).content.decode()
        summary = html.split('<dl class="govuk-summary-list">')[1].split("</dl>")[0]
        shown = set(re.findall(r'<strong class="govuk-tag govuk-tag--(?:red|yellow)">([^<]+)</strong>', summary))
        assert shown == tags, (due, target)


def test_a_closed_recommendation_shows_who_closed_it_when_and_on_what_evidence(client, rec, people):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    Recommendation.objects.filter(pk=rec.pk).update(next_review_due=yesterday, target_date=yesterday)
    rec = _bring_to("closed", rec, people)
    client.force_login(people["vic"])
    html = client.get(rec.get_absolute_url()).content.decode()
    closed = rec.events.get(action=RecommendationEvent.Action.CLOSED)
    summary = html.split('<dl class="govuk-summary-list">')[1].split("</dl>")[0]
    assert f"{closed.at:%-d %B %Y} by {people['rita']}" in summary
    assert "Reason: Audit shows it works" in summary
    item = rec.evidence.get()
    assert f'href="{rec.get_absolute_url()}#evidence-{item.pk}">Audit</a>' in summary
    assert "Next review due" not in summary and "RAG" not in summary
    assert "Overdue" not in summary and "Target missed" not in summary


def test_a_superseded_recommendation_links_to_what_replaced_it(client, rec, people):
    Recommendation.objects.filter(pk=rec.pk).update(next_review_due=timezone.localdate() - dt.timedelta(days=9))
    rec = _bring_to("superseded", rec, people)
    client.force_login(people["vic"])
    html = client.get(rec.get_absolute_url()).content.decode()
    summary = html.split('<dl class="govuk-summary-list">')[1].split("</dl>")[0]
    assert f'<a class="govuk-link" href="{rec.superseded_by.get_absolute_url()}">{rec.superseded_by}</a>' in summary
    assert f"by {people['lead']}" in summary and "Reason: Folded into the new plan" in summary
    assert "Next review due" not in summary and "Overdue" not in summary
