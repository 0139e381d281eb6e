"""The private calendar feed: parses with icalendar, matches the due dates, dies with its token."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import reverse
from icalendar import Calendar

from tests.factories import RecommendationFactory
from tracker import calendar_feed, workflow
from tracker.models import CalendarFeedToken, Recommendation

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(cleveland, lead, olly, otto):
    """Olly owns CC1 (with a target date) and OBS1 (no target date) and a closed one; otto owns CC2."""
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    for ref, owner in (("CC1", olly), ("OBS1", olly), ("OBS2", olly), ("CC2", otto)):
        workflow.assign_owner(recs[ref], by=lead, owner=owner)
    workflow.change_target_date(recs["CC1"], by=lead, target_date=dt.date(2026, 7, 31))
    workflow.change_target_date(recs["CC2"], by=lead, target_date=dt.date(2026, 8, 31))
    Recommendation.objects.filter(pk=recs["OBS2"].pk).update(status=Recommendation.Status.CLOSED)
    return {ref: Recommendation.objects.with_related().get(pk=rec.pk) for ref, rec in recs.items()}


def make_link(client, user) -> str:
    client.force_login(user)
    response = client.post(reverse("tracker:calendar"), {"action": "create"})
    assert response.status_code == 200
    [url] = re.findall(r'value="(http[^"]+\.ics)"', response.content.decode())
    client.logout()
    return urlsplit(url).path


def test_the_feed_parses_and_holds_exactly_the_owners_review_and_target_dates(client, owned, olly):
    path = make_link(client, olly)
    response = client.get(path)  # no session: Outlook has none
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    events = {(str(e["summary"]), e.decoded("dtstart")) for e in calendar.walk("VEVENT")}
    cc1, obs1 = owned["CC1"], owned["OBS1"]
    assert events == {
        (f"Review due: CC1 {cc1.title}", cc1.next_review_due),
        (f"Target date: CC1 {cc1.title}", dt.date(2026, 7, 31)),
        (f"Review due: OBS1 {obs1.title}", obs1.next_review_due),
    }  # not OBS2 (closed), not CC2 (otto's)
    for event in calendar.walk("VEVENT"):  # all-day events
        assert not isinstance(event.decoded("dtstart"), dt.datetime)
    links = {str(e["url"]) for e in calendar.walk("VEVENT")}
    assert links == {f"{settings.SITE_URL}{cc1.get_absolute_url()}", f"{settings.SITE_URL}{obs1.get_absolute_url()}"}
    # References, titles, dates and a link only: none of the finding's summary or quote.
    body = response.content.decode()
    assert cc1.finding.summary[:30] not in body and cc1.finding.quote[:30] not in body


def test_only_a_hash_of_the_token_is_stored(client, owned, olly):
    path = make_link(client, olly)
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    stored = CalendarFeedToken.objects.get(user=olly)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(CalendarFeedToken.objects.values_list()))
    client.get(path)
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_a_revoked_token_gets_404(client, owned, olly):
    path = make_link(client, olly)
    assert client.get(path).status_code == 200
    client.force_login(olly)
    response = client.post(reverse("tracker:calendar"), {"action": "revoke"})
    assert response.status_code == 302
    client.logout()
    assert client.get(path).status_code == 404


def test_a_new_link_replaces_the_old_one(client, owned, olly):
    old = make_link(client, olly)
    new = make_link(client, olly)
    assert old != new
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    assert CalendarFeedToken.objects.filter(user=olly, revoked_at__isnull=True).count() == 1


def test_unknown_tokens_and_deactivated_users_get_404(client, owned, olly):
    assert client.get(reverse("tracker:calendar-feed", args=["not-a-real-token"])).status_code == 404
    path = make_link(client, olly)
    olly.is_active = False
    olly.save()
    assert client.get(path).status_code == 404


def test_the_feed_follows_changes_of_owner(client, owned, olly, otto, lead):
    path = make_link(client, olly)
    workflow.assign_owner(owned["CC1"], by=lead, owner=otto, reason="Moved to the exploitation team")
    summaries = {str(e["summary"]) for e in Calendar.from_ical(client.get(path).content).walk("VEVENT")}
    assert not any("CC1" in s for s in summaries)


def test_the_settings_page_needs_sign_in_and_shows_the_link_only_once(client, owned, olly):
    assert client.get(reverse("tracker:calendar")).status_code == 302
    client.force_login(olly)
    assert "You have no calendar link" in client.get(reverse("tracker:calendar")).content.decode()
    response = client.post(reverse("tracker:calendar"), {"action": "create"})
    token = re.search(r"/calendar/([^\"]+)\.ics", response.content.decode()).group(1)
    page = client.get(reverse("tracker:calendar")).content.decode()
    assert "You have a calendar link" in page
    assert token not in page


def test_tokens_are_long_and_random(olly, org):
    RecommendationFactory(finding__inspection__organisation=org, owner=olly)
    tokens = {calendar_feed.issue_token(olly) for _ in range(5)}
    assert len(tokens) == 5
    assert all(len(t) >= 43 for t in tokens)
