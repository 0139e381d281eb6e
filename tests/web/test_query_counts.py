"""The home page and the list page run a fixed number of queries, whatever the number of rows."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import RecommendationFactory, ThemeFactory
from tracker.models import Recommendation
from tracker.views import HOME_PAGE_SIZE

pytestmark = pytest.mark.django_db


def _add(inspection, owner, count: int, theme) -> None:
    today = timezone.localdate()
    for i in range(count):
        rec = RecommendationFactory(
            finding__inspection=inspection,
            owner=owner,
            rag=["red", "amber", "green", ""][i % 4],
            next_review_due=today + dt.timedelta(days=(i % 60) - 30),
            target_date=today + dt.timedelta(days=90),
        )
        rec.finding.themes.add(theme)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("persona", "url"),
    [
        ("olly", "/"),
        ("rita", "/recommendations/"),
        ("rita", "/recommendations/?status=not_started&rag=red&overdue=true&theme=t&q=Finding&sort=owner&page=1"),
    ],
)
def test_the_same_number_of_queries_at_10_and_500_rows(client, request, inspection, olly, persona, url):
    theme = ThemeFactory(slug="t")
    user = request.getfixturevalue(persona)
    client.force_login(user)
    _add(inspection, olly, 10, theme)
    at_10 = _queries(client, url)
    _add(inspection, olly, 490, theme)
    at_500 = _queries(client, url)
    assert at_10 == at_500, (at_10, at_500)
    assert at_10 <= 12  # session, user, roles, the rows, counts and the filter choices


def test_the_home_page_lists_due_reviews_in_full_and_the_rest_by_pages(client, inspection, olly):
    theme = ThemeFactory(slug="t")
    _add(inspection, olly, 500, theme)
    today = timezone.localdate()
    mine = Recommendation.objects.filter(owner=olly)
    due = mine.overdue(today).count() + mine.due_soon(today).count()
    client.force_login(olly)
    html = client.get(reverse("tracker:home")).content.decode()
    assert "You own 500 recommendations" in html
    assert f"Other open recommendations ({500 - due})" in html
    assert _rows(html) == due + HOME_PAGE_SIZE
    seen = set(re.findall(r'href="(/recommendations/\d+/)"', html))
    while 'rel="next"' in html:
        html = client.get(reverse("tracker:home") + _next(html)).content.decode()
        seen |= set(re.findall(r'href="(/recommendations/\d+/)"', html))
    assert len(seen) == 500


def _rows(html: str) -> int:
    return html.count('<tr class="govuk-table__row">') - html.count("<thead")


def _next(html: str) -> str:
    return unescape(re.search(r'href="([^"]+)" rel="next"', html).group(1))
