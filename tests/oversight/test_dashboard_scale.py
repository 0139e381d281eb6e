"""The dashboard does not grow with the data: the same queries and (nearly) the same HTML at 20 and 300
recommendations, at most a few findings per theme with a link to the rest, and weekly figures counted
against week boundaries rather than by truncating each row's date."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import InspectionFactory, RecommendationFactory, ThemeFactory
from tracker import dashboard, permissions
from tracker.models import Recommendation, Theme

pytestmark = pytest.mark.django_db

Status = Recommendation.Status
THEMES = ("scale-alpha", "scale-bravo", "scale-charlie", "scale-delta")  # none of the seeded themes


@pytest.fixture
def themes():
    return [ThemeFactory(slug=slug, name=slug.replace("-", " ").capitalize()) for slug in THEMES]


def _add(inspection, owner, themes, count: int, start: int = 0) -> list[Recommendation]:
    """Recommendations spread across the themes, each awaiting assurance with its review and target passed,
    so that even a few fill every capped list on the page."""
    today = timezone.localdate()
    made = []
    for i in range(start, start + count):
        rec = RecommendationFactory(
            finding__inspection=inspection,
            finding__reference=f"R{i:04d}",
            finding__title=f"Finding {i:04d}",
            owner=owner,
            status=Status.AWAITING_ASSURANCE,
            rag="red",
            next_review_due=today - dt.timedelta(days=1 + i % 50),
            target_date=today - dt.timedelta(days=1 + i % 30),
        )
        rec.finding.themes.add(themes[i % len(themes)])
        made.append(rec)
    return made


def _get(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.mark.parametrize("per_inspection", [False, True])
def test_queries_and_html_size_are_the_same_at_20_and_300_recommendations(
    client, org, rita, olly, themes, per_inspection
):
    inspection = InspectionFactory(organisation=org)
    url = reverse("tracker:dashboard") + (f"?inspection={inspection.pk}" if per_inspection else "")
    client.force_login(rita)
    _add(inspection, olly, themes, 20)
    queries_20, html_20 = _get(client, url)
    _add(inspection, olly, themes, 280, start=20)
    queries_300, html_300 = _get(client, url)
    assert dashboard.build(rita, inspection=inspection).total == 300
    assert queries_20 == queries_300, (queries_20, queries_300)
    # Every list was already full at 20: only numbers change (ids and counts gain a digit, and "See all"
    # links appear), a few hundred bytes. Listing every finding would add tens of kilobytes.
    assert abs(len(html_300) - len(html_20)) <= 0.02 * len(html_20), (len(html_20), len(html_300))


def test_each_theme_shows_at_most_the_cap_most_overdue_first(org, rita, olly, themes):
    inspection = InspectionFactory(organisation=org)
    recs = _add(inspection, olly, themes, 40)
    # The most overdue of the first theme, but closed: it goes after the open ones.
    closed = min(recs[:: len(THEMES)], key=lambda r: r.next_review_due)
    Recommendation.objects.filter(pk=closed.pk).update(status=Status.CLOSED)
    board = dashboard.build(rita, inspection=inspection)
    rows = {row.slug: row for row in board.themes}
    assert set(rows) == set(THEMES)
    for slug, row in rows.items():
        assert row.current_count == 10
        assert len(row.current) == dashboard.THEME_LIMIT
        dues = [f.review_due for f in row.current]
        assert dues == sorted(dues), slug
    theme = rows[THEMES[0]]
    mine = Recommendation.objects.filter(finding__themes__slug=THEMES[0]).exclude(pk=closed.pk)
    expected = list(mine.order_by("next_review_due", "finding__reference")[: dashboard.THEME_LIMIT])
    assert [f.recommendation_id for f in theme.current] == [r.pk for r in expected]
    assert closed.pk not in [f.recommendation_id for f in theme.current]


def test_earlier_inspections_are_capped_too(org, rita, olly, themes, cleveland):
    for i in range(7):
        history = InspectionFactory(organisation=org, tracked=False, title=f"Old inspection {i}", published_text="2016")
        finding = RecommendationFactory.build().finding  # a bare finding: history has no recommendations
        finding.inspection, finding.reference = history, f"H{i}"
        finding.save()
        finding.themes.add(themes[0])
    _add(cleveland, olly, themes, 4, start=100)
    [row] = [row for row in dashboard.build(rita).themes if row.slug == THEMES[0]]
    assert row.inspection_count == 8
    assert len(row.earlier) == dashboard.THEME_LIMIT
    assert row.more_earlier == 7 - dashboard.THEME_LIMIT
    assert [e.findings for e in row.earlier] == [1] * dashboard.THEME_LIMIT


@pytest.mark.parametrize("per_inspection", [False, True])
def test_each_theme_links_to_its_filtered_recommendation_list(client, org, rita, olly, themes, per_inspection):
    inspection = InspectionFactory(organisation=org)
    _add(inspection, olly, themes, 40)
    client.force_login(rita)
    query = f"?inspection={inspection.pk}" if per_inspection else ""
    html = client.get(reverse("tracker:dashboard") + query).content.decode()
    for slug in THEMES:
        link = f"/recommendations/?theme={slug}" + (f"&amp;inspection={inspection.pk}" if per_inspection else "")
        assert html.count(f'href="{link}"') == 1, slug
        assert "See all 10" in html
    # The link is one the list understands: it shows that theme's recommendations and no others.
    listed = client.get(f"/recommendations/?theme={THEMES[1]}").content.decode()
    assert "R0001" in listed and "R0000" not in listed


def test_weekly_figures_count_against_week_boundaries_not_each_rows_date(client, org, rita, olly, themes):
    inspection = InspectionFactory(organisation=org)
    _add(inspection, olly, themes, 8)
    client.force_login(rita)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("tracker:dashboard")).status_code == 200
    sql = " ".join(query["sql"].lower() for query in captured.captured_queries)
    assert "trunc" not in sql and "strftime" not in sql and "date_part" not in sql
    assert dashboard.build(rita, inspection=inspection).weeks[-1].open_at_end == 8


@pytest.mark.parametrize("per_inspection", [False, True])
def test_each_themes_most_overdue_are_the_first_of_the_review_order_over_varied_data(
    org, rita, olly, themes, monkeypatch, per_inspection
):
    """Findings with several themes or none, closed recommendations, two inspections, equal review dates,
    and a scan limit that cuts the walk short: each theme's few are exactly the first of its rows among the
    first THEME_SCAN_LIMIT (recommendation, theme) rows in review order, as counted here in Python."""
    import random

    rng = random.Random(7)
    today = timezone.localdate()
    inspections = [InspectionFactory(organisation=org), InspectionFactory(organisation=org)]
    for i in range(90):
        rec = RecommendationFactory(
            finding__inspection=inspections[i % 2],
            finding__reference=f"V{i:03d}",
            owner=olly,
            status=rng.choice([Status.NOT_STARTED, Status.IN_PROGRESS, Status.CLOSED]),
            next_review_due=today + dt.timedelta(days=rng.randint(-20, 20)),
        )
        rec.finding.themes.add(*rng.sample(themes, rng.choice([0, 1, 1, 2, 3])))
    monkeypatch.setattr(dashboard, "THEME_SCAN_LIMIT", 40)
    inspection = inspections[1] if per_inspection else None
    scope = permissions.visible_recommendations(rita).filter(
        status__in=Recommendation.OPEN_STATUSES, finding__inspection__tracked=True
    )
    if inspection is not None:
        scope = scope.filter(finding__inspection=inspection)
    walk = [
        (theme_id, rec)
        for rec in sorted(scope, key=lambda r: (r.next_review_due, r.pk))
        for theme_id in sorted(rec.finding.themes.values_list("pk", flat=True)) or [None]
    ][: dashboard.THEME_SCAN_LIMIT]
    board = dashboard.build(rita, inspection=inspection)
    assert {row.slug for row in board.themes} >= set(THEMES)
    for row in board.themes:
        theme_id = Theme.objects.get(slug=row.slug).pk
        expected = [rec for t, rec in walk if t == theme_id][: dashboard.THEME_LIMIT]
        assert [(f.recommendation_id, f.reference, f.review_due) for f in row.current] == [
            (rec.pk, rec.finding.reference, rec.next_review_due) for rec in expected
        ], row.slug
