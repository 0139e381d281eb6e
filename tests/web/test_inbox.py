"""Home is a task inbox for whoever signs in: each role's groups, their counts, and the list behind each."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import RecommendationFactory
from tests.one_rule import note, submitted
from tracker import inbox, workflow
from tracker.models import PlanAction, ProgressUpdate, Recommendation, RecommendationEvent, Reminder
from tracker.permissions import visible_recommendations

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def make(inspection, **kw) -> Recommendation:
    return RecommendationFactory(finding__inspection=inspection, **kw)


def section(html: str, key: str) -> str:
    start = html.index(f'id="group-{key}"')
    return html[start : html.index("</section>", start)]


def count_in(html: str, key: str) -> int:
    return int(re.search(r'govuk-tag--\w+">(\d+)</span>', section(html, key)).group(1))


def home(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("tracker:home"))
    assert response.status_code == 200
    return response.content.decode()


class TestOwner:
    def test_the_reviewers_reason_is_at_the_top_in_full(self, client, inspection, olly, rita):
        rec = submitted(make(inspection, owner=olly, finding__reference="CC2"), olly)
        reason = "The audit covers only 5 cases.\nSample at least 40 missing episodes, across both districts."
        workflow.reject(rec, by=rita, reason=reason)
        html = home(client, olly)
        banner = html[html.index('id="returned"') :]
        assert html.index('id="returned"') < html.index('<h2 class="govuk-heading-l')  # before every group
        assert "Returned to you (1)" in banner
        assert "CC2: " in banner and reason in unescape(banner)
        assert f"by {rita.first_name} {rita.last_name}" in unescape(banner)

    def test_rejected_evidence_returns_it_until_the_owner_answers(self, client, inspection, olly, rita):
        rec = make(inspection, owner=olly)
        workflow.post_update(rec, by=olly, narrative="Started.")
        item = note(rec, olly)
        workflow.review_evidence(item, by=rita, accept=False, reason="Names a child: remove case details.")
        assert "Names a child: remove case details." in home(client, olly)
        note(rec, olly)  # the owner answers with new evidence
        assert 'id="returned"' not in home(client, olly)

    def test_groups_come_in_the_issues_order_and_each_item_in_one_group(self, client, inspection, olly, rita):
        today = TODAY()
        overdue = make(inspection, owner=olly, next_review_due=today - dt.timedelta(days=3))
        soon = make(inspection, owner=olly, next_review_due=today + dt.timedelta(days=2))
        missed = make(inspection, owner=olly, target_date=today - dt.timedelta(days=1))
        rest = make(inspection, owner=olly)
        make(inspection, owner=None)  # not olly's: in none of his groups
        html = home(client, olly)
        order = [html.index(f'id="group-{key}"') for key in ("overdue", "due_soon", "target_missed", "mine_rest")]
        assert order == sorted(order)
        for key, rec in (("overdue", overdue), ("due_soon", soon), ("target_missed", missed), ("mine_rest", rest)):
            assert count_in(html, key) == 1, key
            assert rec.get_absolute_url() in section(html, key), key

    def test_an_owner_opens_the_list_of_a_group_and_sees_only_their_own(self, client, inspection, olly, otto):
        mine = make(inspection, owner=olly, next_review_due=TODAY() - dt.timedelta(days=3))
        theirs = make(inspection, owner=otto, next_review_due=TODAY() - dt.timedelta(days=3))
        client.force_login(olly)
        html = client.get(reverse("tracker:recommendations") + "?group=overdue").content.decode()
        assert mine.get_absolute_url() in html and theirs.get_absolute_url() not in html
        assert "Your recommendations" in html and 'name="owner_name"' not in html


class TestReviewer:
    def test_awaiting_assurance_oldest_first_with_how_long_it_waited(self, client, inspection, olly, rita):
        newer = submitted(make(inspection, owner=olly, finding__reference="AFI9"), olly)
        older = submitted(make(inspection, owner=olly, finding__reference="AFI8"), olly)
        RecommendationEvent.objects.filter(recommendation=older, action="submitted").update(
            at=timezone.now() - dt.timedelta(days=9)
        )
        html = home(client, rita)
        awaiting = section(html, "awaiting")
        assert count_in(html, "awaiting") == 2
        assert awaiting.index(older.get_absolute_url()) < awaiting.index(newer.get_absolute_url())
        assert "1\xa0week, 2\xa0days" in unescape(awaiting)

    def test_a_reviewer_is_not_asked_to_assure_their_own_work(self, client, inspection, lead, rita):
        own_work = submitted(make(inspection, owner=lead), lead)
        assert own_work.get_absolute_url() not in section(home(client, lead), "awaiting")
        assert own_work.get_absolute_url() in section(home(client, rita), "awaiting")

    def test_evidence_awaiting_a_verdict_while_work_goes_on(self, client, inspection, olly, rita):
        rec = make(inspection, owner=olly)
        workflow.post_update(rec, by=olly, narrative="Started.")
        note(rec, olly)
        html = home(client, rita)
        assert count_in(html, "evidence") == 1 and count_in(html, "awaiting") == 0
        assert "Your recommendations" not in html  # a reviewer owns nothing


class TestLead:
    def test_the_leads_groups_and_the_reviewers(self, client, inspection, lead, olly, rita):
        now = timezone.now()
        unowned = make(inspection, owner=None, target_date=TODAY() + dt.timedelta(days=90))
        undated = make(inspection, owner=olly)
        moved = make(inspection, owner=olly)
        workflow.change_target_date(moved, by=lead, target_date=dt.date(2027, 1, 31))
        workflow.change_target_date(moved, by=lead, target_date=dt.date(2027, 6, 30), reason="Partner delay")
        red = make(inspection, owner=olly, rag="red", target_date=TODAY() + dt.timedelta(days=90))
        stuck = make(inspection, owner=olly, review_interval_days=10, target_date=TODAY() + dt.timedelta(days=90))
        Recommendation.objects.filter(pk=stuck.pk).update(created_at=now - dt.timedelta(days=25))
        workflow.post_update(stuck, by=olly, narrative="Long ago.")
        ProgressUpdate.objects.filter(recommendation=stuck).update(created_at=now - dt.timedelta(days=21))
        failed = make(inspection, owner=olly, target_date=TODAY() + dt.timedelta(days=90))
        Reminder.objects.create(
            recommendation=failed, recipient=olly, stage="overdue", review_due=TODAY(), state=Reminder.State.DEAD
        )
        html = home(client, lead)
        expected = {
            "no_owner": unowned,
            "target_moved": moved,
            "red": red,
            "stuck": stuck,
            "reminders_failed": failed,
        }
        for key, rec in expected.items():
            assert count_in(html, key) == 1, key
            assert rec.get_absolute_url() in section(html, key), key
        assert undated.get_absolute_url() in section(html, "no_target")
        assert "Partner delay" in section(html, "target_moved")  # why it moved, not only that it did
        assert 'id="group-awaiting"' in html and 'id="group-evidence"' in html

    def test_a_failed_reminder_of_a_plan_action_flags_its_recommendation(self, client, inspection, lead, olly):
        rec = make(inspection, owner=olly, target_date=TODAY() + dt.timedelta(days=90))
        action = PlanAction.objects.create(recommendation=rec, description="Audit", owner=olly, due_date=TODAY())
        Reminder.objects.create(
            plan_action=action, recipient=olly, stage="action_overdue", due=TODAY(), state=Reminder.State.FAILED
        )
        html = home(client, lead)
        assert count_in(html, "reminders_failed") == 1
        assert rec.get_absolute_url() in section(html, "reminders_failed")

    def test_a_first_target_date_is_not_a_moved_one(self, client, inspection, lead, olly):
        rec = make(inspection, owner=olly)
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2027, 1, 31))
        assert count_in(home(client, lead), "target_moved") == 0

    def test_updated_within_two_intervals_is_not_stuck(self, client, inspection, lead, olly):
        rec = make(inspection, owner=olly, review_interval_days=10)
        Recommendation.objects.filter(pk=rec.pk).update(created_at=timezone.now() - dt.timedelta(days=25))
        workflow.post_update(rec, by=olly, narrative="Recent.")
        ProgressUpdate.objects.filter(recommendation=rec).update(created_at=timezone.now() - dt.timedelta(days=19))
        assert count_in(home(client, lead), "stuck") == 0


def test_every_groups_count_on_home_is_the_length_of_its_list(client, inspection, lead, olly, rita):
    """The same rule behind both: home's count and the list's total (?group=) for each group."""
    today = TODAY()
    for i in range(12):
        rec = make(
            inspection,
            owner=None if i % 4 == 0 else olly,
            rag=["red", "amber", ""][i % 3],
            next_review_due=today + dt.timedelta(days=i * 3 - 12),
            target_date=None if i % 5 == 0 else today + dt.timedelta(days=i * 7 - 30),
        )
        if i % 3 == 1 and rec.owner:
            submitted(rec, olly)
            if i % 2:
                workflow.reject(rec, by=rita, reason="More needed")
    for user in (lead, olly, rita):
        html = home(client, user)
        client.force_login(user)
        for key in re.findall(r'id="group-(\w+)"', html):
            listed = client.get(reverse("tracker:recommendations") + f"?group={key}").content.decode()
            total = int(re.search(r'id="results" tabindex="-1">(\d+) recommendation', listed).group(1))
            assert total == count_in(html, key), (user, key)


class TestViewer:
    def test_figures_and_what_changed_since_the_last_visit(self, client, inspection, lead, olly, vic):
        rec = make(inspection, owner=None, rag="red", finding__reference="CC4")
        workflow.assign_owner(rec, by=lead, owner=olly)
        html = home(client, vic)
        assert '<h1 class="govuk-heading-l">Overview</h1>' in html
        assert re.search(r"<dt>Red RAG</dt><dd>1</dd>", html)
        assert "What changed in the last 7 days (1)" in html and "owner changed" in html
        # The next visit shows only what changed since this one.
        html = home(client, vic)
        assert "What changed since your last visit" in html and "Nothing has changed." in html
        workflow.set_rag(rec, by=lead, rag="amber", reason="Plan agreed")
        html = home(client, vic)
        assert "(1)</h2>" in html and "RAG changed" in html.replace("rag changed", "RAG changed")

    def test_the_last_visit_leaves_no_history_row(self, client, vic):
        client.force_login(vic)  # signing in writes last_login, with its own history row
        before = vic.history.count()
        client.get(reverse("tracker:home"))
        vic.refresh_from_db()
        assert vic.home_seen_at is not None and vic.history.count() == before


def test_the_inbox_groups_are_the_filter_choices(client, rita):
    client.force_login(rita)
    refused = client.get(reverse("tracker:recommendations") + "?group=nonsense").content.decode()
    assert "Choose from: " in refused and "0 recommendations" in refused
    assert set(inbox.GROUPS) == {key for key, _label in inbox.GROUP_CHOICES}


def test_the_api_lists_a_group_with_the_same_rule(inspection, lead, olly, rita):
    from rest_framework.test import APIClient

    unowned = make(inspection, owner=None)
    make(inspection, owner=olly)
    waiting = submitted(make(inspection, owner=olly), olly)
    api = APIClient()
    api.force_authenticate(lead)
    listed = api.get("/api/recommendations/", {"group": "no_owner"}).json()["results"]
    assert [row["id"] for row in listed] == [unowned.pk]
    api.force_authenticate(rita)
    assert [row["id"] for row in api.get("/api/recommendations/", {"group": "awaiting"}).json()["results"]] == [
        waiting.pk
    ]
    assert api.get("/api/recommendations/", {"group": "nonsense"}).status_code == 400


def test_home_counts_a_group_up_to_its_limit_and_the_list_counts_it_all(client, inspection, lead, monkeypatch):
    """Past COUNT_LIMIT home says "N+" rather than read every item of a large group on every visit."""
    monkeypatch.setattr(inbox, "COUNT_LIMIT", 3)
    monkeypatch.setattr(inbox, "INBOX_ROWS", 2)  # fewer rows than the limit, as 8 are to 1,000
    for _ in range(5):
        make(inspection, owner=None)
    # Counted up to one past the limit, not every one of them.
    shown = {g.group.key: g for _title, groups in inbox.inbox(lead, visible_recommendations(lead)) for g in groups}
    assert shown["no_owner"].count == 4
    html = home(client, lead)
    unowned = section(html, "no_owner")
    assert 'govuk-tag--blue">3+</span>' in unowned and "See all 3+" in unowned
    assert "<strong>3+</strong>" in html  # at a glance
    listed = client.get(reverse("tracker:recommendations") + "?group=no_owner").content.decode()
    assert "5 recommendations</h2>" in listed

    monkeypatch.setattr(inbox, "COUNT_LIMIT", 5)  # at the limit: the exact count
    assert count_in(home(client, lead), "no_owner") == 5
