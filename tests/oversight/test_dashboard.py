"""The dashboard's figures against a known dataset, its permissions, and its fixed query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import EvidenceFactory, InspectionFactory, RecommendationFactory, ThemeFactory
from tests.oversight.conftest import TODAY
from tracker import dashboard
from tracker.models import Recommendation, RecommendationEvent

pytestmark = pytest.mark.django_db

Status = Recommendation.Status


def _at(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0)))


@pytest.fixture
def known(frozen, cleveland, olly, otto):
    """The 19 seeded 2025 recommendations (its 3 strengths are not tracked), put into a known state.

    CC1 in progress, red, review 10 days overdue, target missed; CC2 awaiting assurance, amber, one
    pending evidence item; OBS1 closed two weeks ago; OBS2 in progress, amber, review one day overdue;
    OBS3 closed this week. The other fourteen are not started and not rated. All were created on 7 January.
    """
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    assert len(recs) == 19
    Recommendation.objects.filter(pk__in=[r.pk for r in recs.values()]).update(created_at=_at(dt.date(2026, 1, 7)))

    def put(ref, **values):
        Recommendation.objects.filter(pk=recs[ref].pk).update(**values)

    put("CC1", status=Status.IN_PROGRESS, rag="red", owner=olly, next_review_due=TODAY - dt.timedelta(days=10))
    Recommendation.objects.filter(pk=recs["CC1"].pk).update(target_date=TODAY - dt.timedelta(days=5))
    put("CC2", status=Status.AWAITING_ASSURANCE, rag="amber", owner=otto)
    EvidenceFactory(recommendation=recs["CC2"], added_by=otto)
    put("OBS1", status=Status.CLOSED, rag="green")
    put("OBS2", status=Status.IN_PROGRESS, rag="amber", next_review_due=TODAY - dt.timedelta(days=1))
    put("OBS2", target_date=TODAY + dt.timedelta(days=30))
    put("OBS3", status=Status.CLOSED, rag="green", target_date=TODAY - dt.timedelta(days=3))  # closed: not "missed"
    closed = RecommendationEvent.Action.CLOSED
    RecommendationEvent.objects.create(recommendation=recs["OBS1"], action=closed, at=_at(dt.date(2026, 3, 4)))
    RecommendationEvent.objects.create(recommendation=recs["OBS3"], action=closed, at=_at(dt.date(2026, 3, 17)))
    return recs


def test_the_overall_figures_match_the_known_dataset(known, rita):
    board = dashboard.build(rita)
    assert board.total == 19  # the 2017 and 2018 inspections are untracked history: no recommendations
    assert {value: n for value, _, n in board.by_status} == {
        "not_started": 14,
        "in_progress": 2,
        "awaiting_assurance": 1,
        "closed": 2,
        "superseded": 0,
    }
    assert {value: n for value, _, n in board.by_rag} == {"red": 1, "amber": 2, "green": 2, "": 14}
    assert board.overdue_count == 2
    assert [r.reference for r in board.overdue] == ["CC1", "OBS2"]  # most overdue first
    assert board.missed_count == 1
    assert [r.reference for r in board.missed] == ["CC1"]
    assert [(r.reference, r.pending_evidence) for r in board.awaiting] == [("CC2", 1)]
    [row] = board.rows
    assert (row.inspection.slug, row.total, row.by_status["closed"], row.by_rag["red"]) == (
        "cleveland-police-2025-ncpi",
        19,
        2,
        1,
    )
    assert (row.overdue, row.missed_target) == (2, 1)


def test_progress_over_time_counts_open_at_week_end_and_closed_in_the_week(known, rita):
    weeks = {w.start: (w.open_at_end, w.closed) for w in dashboard.build(rita).weeks}
    assert len(weeks) == 12
    assert min(weeks) == dt.date(2025, 12, 29)
    assert max(weeks) == dt.date(2026, 3, 16)  # the Monday of this week
    assert weeks[dt.date(2025, 12, 29)] == (0, 0)  # before the recommendations were created
    assert weeks[dt.date(2026, 1, 5)] == (19, 0)
    assert weeks[dt.date(2026, 3, 2)] == (18, 1)
    assert weeks[dt.date(2026, 3, 9)] == (18, 0)
    assert weeks[dt.date(2026, 3, 16)] == (17, 1)


def test_a_reopened_recommendation_counts_as_open_again(known, rita):
    RecommendationEvent.objects.create(
        recommendation=known["OBS1"], action=RecommendationEvent.Action.REOPENED, at=_at(dt.date(2026, 3, 10))
    )
    weeks = {w.start: (w.open_at_end, w.closed) for w in dashboard.build(rita).weeks}
    assert weeks[dt.date(2026, 3, 9)] == (19, 0)
    assert weeks[dt.date(2026, 3, 16)] == (18, 1)


def test_themes_show_the_same_theme_raised_in_2017_and_2018_beside_todays_findings(known, rita):
    themes = {row.slug: row for row in dashboard.build(rita).themes}
    missing = themes["missing-children"]
    assert missing.inspection_count == 3
    # CC1 is the most overdue open recommendation of the 2025 findings on missing children.
    assert missing.current[0].reference == "CC1"
    assert missing.current_count >= len(missing.current)
    assert [(e.when, e.findings) for e in missing.earlier] == [("2017", 2), ("2018", 1)]
    # A theme new in 2025 has nothing earlier beside it.
    assert themes["online-exploitation"].earlier == []
    assert themes["online-exploitation"].inspection_count == 1


def test_one_inspection_narrows_every_figure(known, rita, olly, org):
    other = InspectionFactory(organisation=org, title="Joint targeted area inspection")
    RecommendationFactory(finding__inspection=other, owner=olly, status=Status.IN_PROGRESS, rag="red")
    overall = dashboard.build(rita)
    assert overall.total == 20
    assert len(overall.rows) == 2
    only = dashboard.build(rita, inspection=other)
    assert only.total == 1
    assert {value: n for value, _, n in only.by_rag}["red"] == 1
    assert only.overdue_count == 0


def test_the_page_shows_the_figures_charts_and_their_tables(client, known, rita):
    client.force_login(rita)
    response = client.get(reverse("tracker:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    for figure, value in (("total", 19), ("overdue", 2), ("missed", 1), ("awaiting", 1)):
        assert f'data-figure="{figure}">{value}<' in html
    assert html.count('<svg role="img"') == 4  # status, RAG, progress, themes
    assert html.count("<title id=") == 4
    assert "Not started: 14; In progress: 2; Awaiting assurance: 1; Closed: 2; Superseded: 0." in html
    assert "Recommendations by status: the numbers" in html
    assert 'data-theme="missing-children"' in html


def test_owners_are_refused_and_other_organisations_do_not_exist(client, known, olly, mallory, cleveland):
    client.force_login(olly)
    assert client.get(reverse("tracker:dashboard")).status_code == 403
    client.force_login(mallory)
    response = client.get(reverse("tracker:dashboard"))
    assert response.status_code == 200
    assert 'data-figure="total">0<' in response.content.decode()
    assert client.get(reverse("tracker:dashboard"), {"inspection": cleveland.pk}).status_code == 404
    assert client.get(reverse("tracker:dashboard"), {"inspection": "x"}).status_code == 404


def test_viewers_and_leads_see_it_and_it_is_in_their_navigation(client, known, vic, lead, olly):
    for user in (vic, lead):
        client.force_login(user)
        assert client.get(reverse("tracker:dashboard")).status_code == 200
        assert 'href="/dashboard/"' in client.get(reverse("tracker:home")).content.decode()
    client.force_login(olly)
    assert 'href="/dashboard/"' not in client.get(reverse("tracker:home")).content.decode()


def test_anonymous_users_are_sent_to_sign_in(client):
    response = client.get(reverse("tracker:dashboard"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def _add(inspection, owner, count: int, theme) -> None:
    today = timezone.localdate()
    for i in range(count):
        rec = RecommendationFactory(
            finding__inspection=inspection,
            owner=owner,
            status=[Status.NOT_STARTED, Status.IN_PROGRESS, Status.AWAITING_ASSURANCE, Status.CLOSED][i % 4],
            rag=["red", "amber", "green", ""][i % 4],
            next_review_due=today + dt.timedelta(days=(i % 60) - 30),
            target_date=today + dt.timedelta(days=(i % 40) - 20),
        )
        rec.finding.themes.add(theme)
        EvidenceFactory(recommendation=rec, added_by=owner)
        RecommendationEvent.objects.create(recommendation=rec, action=RecommendationEvent.Action.CLOSED)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("per_inspection", [False, True])
def test_the_same_number_of_queries_at_10_and_200_rows(client, org, rita, olly, per_inspection):
    inspection = InspectionFactory(organisation=org)
    theme = ThemeFactory(slug="missing-children")
    url = reverse("tracker:dashboard") + (f"?inspection={inspection.pk}" if per_inspection else "")
    client.force_login(rita)
    _add(inspection, olly, 10, theme)
    at_10 = _queries(client, url)
    _add(inspection, olly, 190, theme)
    at_200 = _queries(client, url)
    assert at_10 == at_200, (at_10, at_200)
    # The themes' names and the weeks' new rows are a query each, not a join per row; the inspection
    # deadlines (tracker.deadlines), the measures off track (tracker.outcomes) and the strengths to sustain
    # (tracker.sources) one each.
    assert at_10 <= 19
    assert dashboard.build(rita, inspection=inspection).total == 200
