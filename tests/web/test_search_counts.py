"""A search's counts stop at a limit: a word that matches a large share of everything is never counted row by
row; below the limit the counts are exact."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import RecommendationFactory
from tracker import views

LIST = "/recommendations/"


@pytest.fixture
def five(inspection):
    return [
        RecommendationFactory(finding__inspection=inspection, title=f"Supervision check {n}", status=status)
        for n, status in enumerate(["not_started", "in_progress", "in_progress", "closed", "not_started"])
    ]


def test_a_search_under_the_limit_is_counted_exactly(client, rita, five, monkeypatch):
    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 5)
    client.force_login(rita)
    html = client.get(LIST, {"q": "supervision"}).content.decode()
    assert "5 recommendations<" in html
    assert "In progress: <strong>2</strong>" in html
    assert "More than" not in html


def test_a_search_over_the_limit_says_more_than_and_counts_no_further(client, rita, five, monkeypatch):
    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 3)
    client.force_login(rita)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(LIST, {"q": "supervision"}).content.decode()
    assert "More than 3 recommendations<" in html
    assert "not counted by status" in html
    assert "Download these more than 3 recommendations" in html
    assert "In progress: <strong>" not in html  # partial counts would mislead: none are shown
    # One read of the matches gives the counts and the first page: it stops one past the limit ("more than"),
    # or past a page when the limit is smaller; nothing counts every match.
    assert not [q for q in captured.captured_queries if 'COUNT("tracker_recommendation"."id")' in q["sql"]]
    assert [q for q in captured.captured_queries if f"LIMIT {views.PAGE_SIZE + 1}" in q["sql"]]
    assert all(f"Supervision check {n}" in html for n in range(5))  # the page still lists them all


def test_a_filter_without_words_is_counted_exactly_whatever_the_limit(client, rita, five, monkeypatch):
    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 1)
    client.force_login(rita)
    html = client.get(LIST, {"status": "in_progress"}).content.decode()
    assert "2 recommendations<" in html
    assert "More than" not in html
