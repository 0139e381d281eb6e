"""RAG is its own action: a reason, on the timeline, never the status, no progress update needed."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.one_rule import build_states
from tracker import policy, workflow
from tracker.models import Recommendation
from tracker.permissions import Action, NotPermitted

pytestmark = pytest.mark.django_db


def test_setting_rag_records_the_reason_and_leaves_the_status(rec, olly):
    workflow.set_rag(rec, by=olly, rag="amber", reason="Partner data is two weeks late")
    rec.refresh_from_db()
    assert (rec.rag, rec.status) == ("amber", Recommendation.Status.NOT_STARTED)
    assert not rec.updates.exists()
    event = rec.events.get(action="rag_changed")
    assert (event.actor, event.old_value, event.new_value, event.reason) == (
        olly,
        "Not rated",
        "Amber",
        "Partner data is two weeks late",
    )


@pytest.mark.parametrize(("rag", "reason", "message"), [("amber", " ", "reason"), ("", "x", "red, amber or green")])
def test_bad_input_changes_nothing(rec, olly, rag, reason, message):
    with pytest.raises(workflow.InvalidInput, match=message):
        workflow.set_rag(rec, by=olly, rag=rag, reason=reason)
    rec.refresh_from_db()
    assert (rec.rag, rec.version) == ("", 1)


def test_only_the_owner_or_a_lead_may_and_only_while_open(org, lead, rita, olly, vic):
    states = build_states(org, olly, rita)
    for user in (rita, vic):
        with pytest.raises(NotPermitted):
            workflow.set_rag(states["not started"], by=user, rag="red", reason="x")
    with pytest.raises(workflow.WorkflowError, match="closed"):
        workflow.set_rag(states["closed"], by=lead, rag="red", reason="x")
    assert policy.decide(lead, states["awaiting, pending"], Action.SET_RAG)


def test_the_page_defines_red_amber_and_green_and_sets_it(client, rec, olly):
    client.force_login(olly)
    url = reverse("tracker:rag", args=[rec.pk])
    page = client.get(url).content.decode()
    for words in ("Off track", "At risk", "On track"):
        assert words in page
    assert rec.get_absolute_url() + "rag/" in client.get(rec.get_absolute_url()).content.decode()
    missing = client.post(url, {"version": rec.version, "rag": "red"}).content.decode()
    assert "Give a reason for the RAG rating" in missing
    done = client.post(url, {"version": rec.version, "rag": "red", "reason": "Stalled"}, follow=True)
    assert "The RAG rating is now red." in done.content.decode()
    rec.refresh_from_db()
    assert rec.rag == "red"


def test_a_stale_page_is_refused(client, rec, olly, lead):
    client.force_login(olly)
    version = rec.version
    workflow.set_rag(rec, by=lead, rag="green", reason="Checked")
    html = client.post(reverse("tracker:rag", args=[rec.pk]), {"version": version, "rag": "red", "reason": "x"})
    assert "changed by someone else" in html.content.decode()
    rec.refresh_from_db()
    assert rec.rag == "green"


def test_the_api_sets_rag_with_the_same_rules(rec, olly, vic):
    api = APIClient()
    api.force_authenticate(olly)
    url = f"/api/recommendations/{rec.pk}/set-rag/"
    no_reason = api.post(url, {"rag": "red", "version": rec.version}, format="json")
    assert no_reason.status_code == 400
    done = api.post(url, {"rag": "red", "reason": "Stalled", "version": rec.version}, format="json")
    assert done.status_code == 200 and done.json()["rag"] == "red" and done.json()["status"] == "not_started"
    api.force_authenticate(vic)
    refused = api.post(url, {"rag": "green", "reason": "x", "version": done.json()["version"]}, format="json")
    assert refused.status_code == 403


def test_a_rag_given_with_a_progress_update_follows_the_rag_rule(rec, olly):
    workflow.post_update(rec, by=olly, narrative="Audit begun.", rag="amber")
    rec.refresh_from_db()
    assert rec.rag == "amber"
