"""Bulk work on the list: each row through the workflow, per-row results, nothing changed by bad input."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.one_rule import build_states
from tracker import bulk as bulk_service
from tracker import workflow
from tracker.models import Recommendation, RecommendationEvent, SavedFilter
from tracker.permissions import Role

pytestmark = pytest.mark.django_db

LIST = reverse("tracker:recommendations")


def make(inspection, reference, **kw) -> Recommendation:
    return RecommendationFactory(finding__inspection=inspection, finding__reference=reference, **kw)


def bulk(client, recs, selected=None, query="", **changes):
    data = {"form": "bulk", "row": [f"{r.pk}:{r.version}" for r in recs]}
    data["selected"] = [r.pk for r in (recs if selected is None else selected)]
    for name, value in changes.items():
        if name == "target_date":
            data.update(
                {"target_date-day": value.day, "target_date-month": value.month, "target_date-year": value.year}
            )
        else:
            data[name] = value
    return client.post(f"{LIST}?{query}", data, follow=True)


def snapshot(recs):
    return [
        (r.owner_id, r.target_date, r.rag, r.review_interval_days, r.version, r.status)
        for r in Recommendation.objects.filter(pk__in=[r.pk for r in recs]).order_by("pk")
    ]


def test_a_lead_gives_owner_date_and_rag_to_many_in_one_action(client, inspection, lead, olly, otto):
    recs = [make(inspection, f"OBS{i}", owner=None) for i in range(1, 11)]
    client.force_login(lead)
    response = bulk(
        client, recs, owner=otto.pk, target_date=dt.date(2027, 3, 31), rag="amber", reason="Agreed at the board"
    )
    assert "10 changed." in response.content.decode()
    for rec in Recommendation.objects.filter(pk__in=[r.pk for r in recs]):
        assert (rec.owner, rec.target_date, rec.rag) == (otto, dt.date(2027, 3, 31), "amber")
        actions = set(rec.events.values_list("action", flat=True))
        assert {"owner_changed", "target_date_changed", "rag_changed"} <= actions
        assert rec.events.get(action="rag_changed").reason == "Agreed at the board"
        assert rec.status == Recommendation.Status.NOT_STARTED  # RAG never moves the status


def test_each_row_is_decided_on_its_own_and_the_refusals_say_why(client, org, lead, olly, rita):
    states = build_states(org, olly, rita)
    client.force_login(lead)
    recs = list(states.values())
    response = bulk(client, recs, rag="red", reason="Board review")
    html = response.content.decode()
    closed, superseded = states["closed"], states["superseded"]
    assert f"{len(recs) - 2} changed, 2 refused: " in html
    assert (
        f"{closed.reference}: This recommendation is closed; its RAG rating can be set only while it is open." in html
    )
    assert superseded.reference in html
    closed.refresh_from_db()
    assert closed.rag != "red" and not closed.events.filter(action="rag_changed").exists()


def test_a_row_changed_underneath_is_refused_and_the_others_go_ahead(client, inspection, lead, olly, otto):
    first, second = make(inspection, "OBS1", owner=olly), make(inspection, "OBS2", owner=olly)
    client.force_login(lead)
    shown = [Recommendation.objects.get(pk=first.pk), Recommendation.objects.get(pk=second.pk)]
    workflow.set_rag(second, by=olly, rag="green", reason="Ahead of plan")  # after the page was loaded
    html = bulk(client, shown, owner=otto.pk, rag="red", reason="Escalated").content.decode()
    assert "1 changed, 1 refused: OBS2: it was changed by someone else" in html
    second.refresh_from_db()
    assert (second.owner, second.rag) == (olly, "green")
    # All of a refused row's changes are undone, not only the one that failed.
    assert not second.events.filter(action="owner_changed").exists()


def test_a_refusal_part_way_through_a_row_undoes_that_row(inspection, lead, olly, otto):
    rec = make(inspection, "OBS1", owner=olly, target_date=dt.date(2027, 1, 31))
    before = snapshot([rec])
    # The owner and the date go through; the RAG is refused by the workflow: the whole row is undone.
    result = bulk_service.apply(
        lead, {rec.pk: rec.version}, owner=otto, target_date=dt.date(2027, 2, 28), rag="purple", reason="Moved"
    )
    assert result.refused == [("OBS1", "Choose a RAG rating: red, amber or green.")]
    assert snapshot([rec]) == before
    assert not rec.events.exclude(action="created").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rag": "red"}, "Give one reason for the new target date or RAG rating"),
        ({"target_date": dt.date(2027, 2, 28)}, "Give one reason"),
        ({"review_interval_days": "0"}, "from 1 to 366 days"),
        ({"review_interval_days": "ten"}, "whole number of days"),
        ({"rag": "purple", "reason": "x"}, "Select a valid choice"),
        ({"owner": "999999"}, "Choose the owner from the list"),
        ({}, "Choose at least one change"),
    ],
)
def test_invalid_input_changes_nothing(client, inspection, lead, olly, changes, message):
    recs = [make(inspection, f"OBS{i}", owner=olly) for i in range(3)]
    client.force_login(lead)
    before = snapshot(recs)
    response = bulk(client, recs, **changes)
    assert response.status_code == 200
    html = response.content.decode()
    assert "govuk-error-summary" in html and message in html
    assert snapshot(recs) == before
    assert not RecommendationEvent.objects.filter(recommendation__in=recs).exclude(action="created").exists()


def test_an_impossible_date_changes_nothing(client, inspection, lead, olly):
    recs = [make(inspection, "OBS1", owner=olly)]
    client.force_login(lead)
    before = snapshot(recs)
    data = {"form": "bulk", "row": [f"{recs[0].pk}:1"], "selected": [recs[0].pk], "reason": "x"}
    data.update({"target_date-day": "31", "target_date-month": "2", "target_date-year": "2027"})
    html = client.post(LIST, data).content.decode()
    assert "Target date must be a real date" in html and snapshot(recs) == before


def test_nothing_selected_changes_nothing_and_keeps_the_form(client, inspection, lead, olly):
    recs = [make(inspection, "OBS1", owner=olly)]
    client.force_login(lead)
    html = bulk(client, recs, selected=[], rag="red", reason="x").content.decode()
    assert "Select the recommendations to change" in html
    assert snapshot(recs)[0][2] == ""


def test_every_row_on_the_page_without_ticking_each(client, inspection, lead, olly):
    recs = [make(inspection, f"OBS{i}", owner=olly) for i in range(4)]
    client.force_login(lead)
    html = bulk(client, recs, selected=[], all_on_page="on", review_interval_days="14").content.decode()
    assert "4 changed." in html
    assert {r[3] for r in snapshot(recs)} == {14}


def test_a_forged_row_of_another_organisation_is_not_touched(client, inspection, lead, olly):
    elsewhere = OrganisationFactory(slug="far", name="Far Constabulary")
    theirs = RecommendationFactory(finding__inspection__organisation=elsewhere, title="zz-their-secret")
    mine = make(inspection, "OBS1", owner=olly)
    client.force_login(lead)
    before = snapshot([theirs])
    html = bulk(client, [mine, theirs], rag="red", reason="x").content.decode()
    assert "1 changed, 1 refused: A recommendation: it is not one you can see" in html
    assert "zz-their-secret" not in html and theirs.reference + ":" not in html
    assert snapshot([theirs]) == before


def test_an_owner_may_set_rag_in_bulk_on_their_own_but_nothing_else(client, inspection, olly, otto):
    mine = [make(inspection, f"OBS{i}", owner=olly) for i in range(2)]
    client.force_login(olly)
    page = client.get(LIST).content.decode()
    assert 'name="rag"' in page and 'name="owner"' not in page and 'name="target_date-day"' not in page
    html = bulk(client, mine, rag="green", reason="On plan").content.decode()
    assert "2 changed." in html
    # The owner is not a change an owner is offered: it is not read, and nothing changes.
    refused = bulk(client, [Recommendation.objects.get(pk=mine[0].pk)], owner=otto.pk).content.decode()
    assert "Choose at least one change" in refused
    assert Recommendation.objects.get(pk=mine[0].pk).owner == olly
    # Asked directly, the workflow refuses it by role, row by row.
    result = bulk_service.apply(olly, {mine[1].pk: Recommendation.objects.get(pk=mine[1].pk).version}, owner=otto)
    assert result.refused == [(mine[1].reference, "Only a governance lead can assign owners.")]


def test_viewers_and_reviewers_are_offered_no_bulk_changes(client, inspection, olly, rita, vic):
    make(inspection, "OBS1", owner=olly)
    for user in (rita, vic):
        client.force_login(user)
        page = client.get(LIST).content.decode()
        assert 'name="selected"' not in page and 'value="bulk"' not in page


class TestSavedFilters:
    def test_save_open_and_delete_a_filter(self, client, inspection, lead, olly):
        make(inspection, "OBS1", owner=None, rag="red")
        client.force_login(lead)
        query = "rag=red&group=no_owner"
        response = client.post(f"{LIST}?{query}&cursor=abc", {"form": "save-filter", "name": "Red, no owner"})
        assert response.status_code == 302 and response["Location"] == f"{LIST}?{query}"
        saved = SavedFilter.objects.get(user=lead)
        assert (saved.name, saved.query, saved.organisation_id) == ("Red, no owner", query, lead.organisation_id)
        page = client.get(LIST).content.decode()
        assert f'href="{LIST}?rag=red&amp;group=no_owner">Red, no owner</a>' in page
        client.post(LIST, {"form": "delete-filter", "saved": saved.pk})
        assert not SavedFilter.objects.exists()

    def test_a_filter_is_its_owners_alone(self, client, lead, rita, mallory):
        saved = SavedFilter.objects.create(user=lead, organisation=lead.organisation, name="zz-mine", query="rag=red")
        for other in (rita, mallory):
            client.force_login(other)
            assert "zz-mine" not in client.get(LIST).content.decode()
            client.post(LIST, {"form": "delete-filter", "saved": saved.pk})
            assert SavedFilter.objects.filter(pk=saved.pk).exists()

    def test_the_share_link_is_the_filter_without_its_page(self, client, lead):
        client.force_login(lead)
        html = client.get(f"{LIST}?rag=red&cursor=xyz").content.decode()
        assert 'value="http://testserver/recommendations/?rag=red"' in html

    def test_a_nameless_filter_is_not_saved(self, client, lead):
        client.force_login(lead)
        html = client.post(LIST, {"form": "save-filter", "name": " "}, follow=True).content.decode()
        assert "nothing was saved" in html and not SavedFilter.objects.exists()


def test_the_skip_link_comes_before_the_filters(client, lead):
    client.force_login(lead)
    html = client.get(LIST).content.decode()
    assert html.index('href="#results">Skip to results') < html.index('<h2 class="govuk-heading-m">Filter')
    assert 'id="results"' in html


def test_a_user_without_an_organisation_sees_an_empty_list(client, db):
    nobody = UserFactory(username="nobody", organisation=None, roles=[Role.VIEWER])
    client.force_login(nobody)
    assert client.get(LIST).status_code == 200


def test_a_list_row_shows_each_field_escaped_and_ticked_as_sent(client, inspection, lead, olly):
    today = timezone.localdate()
    late = make(inspection, "<R1>", title="<b>Late</b>", owner=None, next_review_due=today - dt.timedelta(days=1))
    closed = make(inspection, "R2", owner=olly, status="closed", rag="red", target_date=dt.date(2030, 1, 5))
    client.force_login(lead)
    html = bulk(client, [late, closed], selected=[late]).content.decode()

    late_row, closed_row = (
        re.search(rf'<tr class="govuk-table__row">\s*<td[^>]*>(?:(?!</tr>).)*?{pk}/"(?:(?!</tr>).)*</tr>', html, re.S)
        for pk in (late.pk, closed.pk)
    )
    late_row, closed_row = late_row.group(0), closed_row.group(0)
    assert f'id="select-{late.pk}" name="selected" type="checkbox" value="{late.pk}" checked>' in late_row
    assert "Select &lt;R1&gt;</span>" in late_row and "&lt;R1&gt;: &lt;b&gt;Late&lt;/b&gt;</a>" in late_row
    assert 'data-label="Owner">No owner</td>' in late_row and 'data-label="Target date">Not set</td>' in late_row
    assert '<strong class="govuk-tag govuk-tag--red">Overdue</strong>' in late_row
    # A closed row may not be changed: no tick box, and its own tags and dates.
    assert f'data-label="Owner">{olly}</td>' in closed_row and "checkbox" not in closed_row
    assert 'govuk-tag--green">Closed</strong>' in closed_row and 'govuk-tag--red">Red</strong>' in closed_row
    assert 'data-label="Target date">5 Jan 2030</td>' in closed_row and "Overdue" not in closed_row
