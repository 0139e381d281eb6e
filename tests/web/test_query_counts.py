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
from tracker import workflow
from tracker.inbox import INBOX_ROWS
from tracker.models import Recommendation

pytestmark = pytest.mark.django_db


def _add(inspection, owner, count: int, theme, lead=None) -> None:
    """Rows spread over every group of home: overdue, due soon, later; some unowned, red, returned."""
    today = timezone.localdate()
    for i in range(count):
        rec = RecommendationFactory(
            finding__inspection=inspection,
            owner=None if i % 7 == 0 else owner,
            rag=["red", "amber", "green", ""][i % 4],
            next_review_due=today + dt.timedelta(days=(i % 60) - 30),
            target_date=None if i % 5 == 0 else today + dt.timedelta(days=90),
        )
        rec.finding.themes.add(theme)
        if lead is not None and i % 10 == 1:
            workflow.post_update(rec, by=lead, narrative="Started.")
            workflow.add_evidence(rec, by=lead, kind="note", category="outcome", description="Audit", note="x")
            if i % 20 == 1:
                workflow.submit_for_assurance(rec, by=lead)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("persona", "url", "most"),
    [
        # Home: the counts, the first rows (two queries, whatever the groups), and the person's own plan actions
        # and measures awaiting data (issue 16: two); a reviewer's and a lead's also the items four eyes keeps
        # from them (one, and one more when they touched any item awaiting a verdict).
        ("olly", "/", 9),
        ("rita", "/", 10),
        ("lead", "/", 12),  # and the inspection deadlines (one query); not its own empty groups
        ("vic", "/", 11),  # what changed since the last visit: its count, the latest ids, those events
        ("olly", "/recommendations/?group=returned", 10),
        ("rita", "/recommendations/", 12),
        ("rita", "/recommendations/?status=not_started&rag=red&overdue=true&theme=t&q=Finding&sort=owner&page=1", 12),
        ("lead", "/recommendations/?group=stuck", 11),
    ],
)
def test_the_same_number_of_queries_at_10_and_200_rows(client, request, inspection, olly, lead, persona, url, most):
    theme = ThemeFactory(slug="t")
    user = request.getfixturevalue(persona)
    client.force_login(user)
    _add(inspection, olly, 10, theme, lead)
    at_10 = _queries(client, url)
    _add(inspection, olly, 190, theme, lead)
    at_200 = _queries(client, url)
    assert at_10 == at_200, (at_10, at_200)
    # Session, user, roles, the counts in one query, then two queries for every group's first rows (home) or
    # the rows, counts and filter choices (the list).
    assert at_10 <= most, at_10


def test_home_shows_the_first_rows_of_each_group_and_links_to_all_of_them(client, inspection, olly, lead):
    theme = ThemeFactory(slug="t")
    _add(inspection, olly, 120, theme, lead)
    today = timezone.localdate()
    overdue = Recommendation.objects.filter(owner=olly).overdue(today).count()
    client.force_login(olly)
    html = client.get(reverse("tracker:home")).content.decode()
    section = html[html.index('id="group-overdue"') : html.index('id="group-due_soon"')]
    assert _rows(section) == INBOX_ROWS
    assert f"See all {overdue}" in section
    link = unescape(re.search(r'href="(/recommendations/\?group=overdue)"', section).group(1))
    listed = client.get(link).content.decode()
    assert f"{overdue} recommendations</h2>" in listed


def _rows(html: str) -> int:
    return html.count('<tr class="govuk-table__row">') - html.count("<thead")
