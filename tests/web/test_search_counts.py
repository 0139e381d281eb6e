"""A search's counts stop at a limit: a word that matches a large share of everything is never counted row by
row; below the limit the counts are exact."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Count
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import RecommendationFactory, ThemeFactory
from tracker import permissions, search, views
from tracker.filters import RecommendationFilter
from tracker.models import Recommendation

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


def _shown(html: str) -> dict[str, int]:
    counts = re.search(r'<ul class="govuk-list tracker-counts".*?</ul>', html, re.S).group(0)
    return {label: int(n) for label, n in re.findall(r"<li>([^:<]+): <strong>(\d+)</strong></li>", counts)}


def _fresh(scope) -> dict[str, int]:
    by_status = dict(scope.order_by().values_list("status").annotate(n=Count("pk")))
    fresh = {label: by_status.get(value, 0) for value, label in Recommendation.Status.choices}
    return fresh | {"Review overdue": scope.overdue(timezone.localdate()).count()}


@pytest.mark.parametrize("query", ["", "?sort=owner", "?inspection=&q=+", "?status=closed", "?overdue=false"])
def test_the_counts_shown_equal_a_fresh_count_through_every_kind_of_write(
    client, rita, inspection, other_org, olly, query
):
    today = timezone.localdate()
    recs = [
        RecommendationFactory(
            finding__inspection=inspection,
            owner=olly,
            status=["not_started", "in_progress", "awaiting_assurance", "closed"][n % 4],
            next_review_due=today + dt.timedelta(days=n % 3 - 1),
        )
        for n in range(12)
    ]
    RecommendationFactory(finding__inspection__organisation=other_org, next_review_due=today - dt.timedelta(days=9))
    Recommendation.objects.filter(pk=recs[0].pk).update(status="closed")  # raw: no workflow, no signal
    Recommendation.objects.filter(pk=recs[1].pk).delete()
    client.force_login(rita)

    shown = _shown(client.get(LIST + query).content.decode())

    scope = Recommendation.objects.filter(organisation=rita.organisation)
    filtered = RecommendationFilter(QueryDict(query.lstrip("?")), queryset=scope).qs
    assert shown == _fresh(filtered)
    assert _fresh(scope)["Review overdue"] == 2 and _fresh(scope)["Closed"] == 4


@pytest.mark.parametrize(
    "narrowed",
    [
        {},
        {"status": ["closed", "in_progress"]},
        {"overdue": "true"},
        {"overdue": "false", "due_before": "TODAY"},
        {"due_after": "TODAY"},
        {"inspection": "INSPECTION"},
    ],
    ids=["alone", "statuses", "overdue", "not overdue and due before", "due after", "inspection"],
)
@pytest.mark.parametrize("viewer", ["rita", "olly"], ids=["sees everything", "sees their own"])
def test_a_themes_counts_equal_a_fresh_count_of_what_the_viewer_sees(
    client, request, inspection, other_org, olly, otto, narrowed, viewer
):
    """Filtered by a theme (and its status or review date), someone who sees the whole organisation is shown
    the kept counts; they must equal a fresh count through every kind of write, and an owner's must stay over
    their own. Another filter (the inspection) is counted afresh."""
    today = timezone.localdate()
    shared, other = ThemeFactory(slug="shared"), ThemeFactory(slug="other")
    recs = [
        RecommendationFactory(
            finding__inspection=inspection,
            owner=[olly, otto, None][n % 3],
            status=["not_started", "in_progress", "awaiting_assurance", "closed"][n % 4],
            next_review_due=today + dt.timedelta(days=n % 3 - 1),
        )
        for n in range(15)
    ]
    for n, rec in enumerate(recs):
        rec.finding.themes.set([[shared], [shared, other], [other], []][n % 4])
    elsewhere = RecommendationFactory(finding__inspection__organisation=other_org, next_review_due=today)
    elsewhere.finding.themes.add(shared)
    # Raw writes, no workflow: a status, review dates (an overdue one reviewed, one falling overdue), themes
    # added and removed, a deletion.
    Recommendation.objects.filter(pk=recs[0].pk).update(status="closed")
    assert recs[9].is_overdue(today) and not recs[4].is_overdue(today) and not recs[5].is_overdue(today)
    Recommendation.objects.filter(pk=recs[9].pk).update(next_review_due=today)
    Recommendation.objects.filter(pk__in=[recs[4].pk, recs[5].pk]).update(next_review_due=today - dt.timedelta(days=30))
    recs[2].finding.themes.add(shared)
    recs[1].finding.themes.remove(shared)
    Recommendation.objects.filter(pk=recs[8].pk).delete()
    person = request.getfixturevalue(viewer)
    client.force_login(person)

    placeholders = {"TODAY": str(today), "INSPECTION": str(inspection.pk)}
    query = {"theme": "shared", **narrowed}
    query |= {name: placeholders[value] for name, value in narrowed.items() if value in ("TODAY", "INSPECTION")}
    with CaptureQueriesContext(connection) as captured:
        shown = _shown(client.get(LIST, query).content.decode())

    visible = permissions.visible_recommendations(person)
    assert shown == _fresh(RecommendationFilter(QueryDict(urlencode(query, doseq=True)), queryset=visible).qs)
    kept = any("tracker_themestatuscount" in q["sql"] for q in captured.captured_queries)
    assert kept == (viewer == "rita" and "inspection" not in narrowed)


@pytest.mark.parametrize(
    "narrowed",
    [
        {"status": ["in_progress"]},
        {"rag": ["red", "amber"]},
        {"status": ["in_progress", "closed"], "rag": ["red"]},
        {"status": ["not_started"], "overdue": "true"},
    ],
    ids=["a status", "two RAGs", "statuses and a RAG", "a status and overdue"],
)
@pytest.mark.parametrize("viewer", ["rita", "olly"], ids=["sees everything", "sees their own"])
def test_counts_by_status_and_rag_equal_a_fresh_count_of_what_the_viewer_sees(
    client, request, inspection, other_org, olly, otto, narrowed, viewer
):
    """Filtered only by status or RAG, someone who sees the whole organisation is shown the kept counts (and the
    overdue ones counted over the filtered rows); they must equal a fresh count through every kind of write, and
    an owner's must stay over their own. Another filter (overdue) is counted afresh."""
    today = timezone.localdate()
    recs = [
        RecommendationFactory(
            finding__inspection=inspection,
            owner=[olly, otto, None][n % 3],
            status=["not_started", "in_progress", "awaiting_assurance", "closed"][n % 4],
            rag=["red", "amber", "green", ""][n % 5 % 4],
            next_review_due=today + dt.timedelta(days=n % 3 - 1),
        )
        for n in range(20)
    ]
    RecommendationFactory(
        finding__inspection__organisation=other_org, status="in_progress", rag="red", next_review_due=today
    )
    # Raw writes, no workflow: a status, a RAG, review dates, a deletion.
    Recommendation.objects.filter(pk=recs[0].pk).update(status="in_progress", rag="red")
    Recommendation.objects.filter(pk=recs[3].pk).update(rag="")
    Recommendation.objects.filter(pk__in=[recs[4].pk, recs[5].pk]).update(next_review_due=today - dt.timedelta(days=30))
    Recommendation.objects.filter(pk=recs[9].pk).delete()
    person = request.getfixturevalue(viewer)
    client.force_login(person)

    with CaptureQueriesContext(connection) as captured:
        shown = _shown(client.get(LIST, narrowed).content.decode())

    visible = permissions.visible_recommendations(person)
    assert shown == _fresh(RecommendationFilter(QueryDict(urlencode(narrowed, doseq=True)), queryset=visible).qs)
    assert shown["Review overdue"] and sum(shown.values()) > shown["Review overdue"]
    kept = any("tracker_recommendationcount" in q["sql"] for q in captured.captured_queries)
    assert kept == (viewer == "rita" and "overdue" not in narrowed)


def test_a_refused_filter_counts_nothing(client, rita, inspection):
    RecommendationFactory(finding__inspection=inspection)
    client.force_login(rita)
    html = client.get(LIST, {"status": "bogus"}).content.decode()
    assert "0 recommendations<" in html and set(_shown(html).values()) == {0}


@pytest.mark.parametrize("sort", ["due", "-due", "title", "status", "owner"])
@pytest.mark.parametrize("walk", [4, 12, 1000])
@pytest.mark.parametrize("narrowed", [{}, {"status": "not_started"}], ids=["words alone", "with a filter"])
def test_testing_the_first_rows_finds_what_the_index_finds(
    client, rita, inspection, olly, monkeypatch, sort, walk, narrowed
):
    today = timezone.localdate()
    for n in range(30):
        RecommendationFactory(
            finding__inspection=inspection,
            finding__reference="SUP1" if n == 7 else f"R{n}",
            finding__summary="Supervision was weak." if n % 7 == 0 else "-",
            title=f"Supervision {n}" if n % 3 == 0 else f"Other {n % 4}",
            outcome_measure="supervised" if n % 5 == 0 else "-",
            owner=olly if n % 2 else None,
            status=["not_started", "in_progress", "closed"][n % 3],
            next_review_due=today + dt.timedelta(days=n % 4 - 1),
        )
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 5)
    monkeypatch.setattr(views, "SEARCH_WALK", walk)
    client.force_login(rita)

    def shown(words: str) -> tuple[list[str], str]:
        html = client.get(LIST, {"q": words, "sort": sort, **narrowed}).content.decode()
        counts = re.search(r'<h2 class="govuk-heading-m" id="results".*?</(ul|p)>', html, re.S).group(0)
        return re.findall(r'href="(/recommendations/\d+/)"', html), counts

    for words in ["supervis", "SUP1", "weak", "other 1", "nothing at all"]:
        with CaptureQueriesContext(connection) as captured:
            walked = shown(words)
        reads = [q["sql"] for q in captured.captured_queries if "is_overdue" in q["sql"]]
        if search.tests_rows_first(words) and sort != "owner" and words == "supervis" and not narrowed:
            # Four rows held too few matches, so the index was read too; twelve or all of them, enough.
            assert len(reads) == (2 if walk == 4 else 1), reads
        with monkeypatch.context() as patched:
            patched.setattr(search, "tests_rows_first", lambda words: False)
            assert walked == shown(words), words
