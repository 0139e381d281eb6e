"""The board pack carries the inspection's deadlines and its strengths, quoted with honest labels."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from tracker.models import Inspection


def test_the_board_pack_lists_the_deadlines_and_the_strengths_to_sustain(client, frozen, cleveland, rita):
    client.force_login(rita)
    html = client.get(reverse("tracker:board-pack", args=[cleveland.pk])).content.decode()
    deadlines = html[html.index('id="pack-deadlines"') : html.index('id="pack-strengths"')]
    assert "Police and crime commissioner&#x27;s published response</strong>: 12 March 2025 (Passed 371 days ago)" in (
        deadlines
    )
    strengths = html[html.index('id="pack-strengths"') : html.index('id="pack-awaiting"')]
    assert "Strengths to sustain (3)" in strengths
    assert "The inspectorate&#x27;s words: “Chief officers and senior leaders understand" in strengths
    assert 'class="pack-rec"' not in strengths


def test_the_dashboard_lists_the_inspection_deadlines_coming_up(client, frozen, cleveland, rita):
    Inspection.objects.filter(pk=cleveland.pk).update(
        action_plan_due=dt.date(2026, 4, 1), revisit_due=dt.date(2027, 1, 1)
    )
    client.force_login(rita)
    html = client.get(reverse("tracker:dashboard")).content.decode()
    assert "Inspection deadlines coming up" in html
    assert "<strong>Force&#x27;s action plan</strong>" in html and "1 April 2026 (14 days left)" in html
    assert "Inspectorate&#x27;s revisit" not in html  # beyond 90 days
    assert "Police and crime commissioner" not in html  # passed a year ago


def _dashboard(client, user, query: str = "") -> tuple[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("tracker:dashboard") + query)
    assert response.status_code == 200
    return response.content.decode(), len(captured)


def _strengths(html: str) -> str:
    start = html.index('id="strengths"')
    return html[start : html.index("<h2", start)]


def test_the_dashboard_shows_the_strengths_as_what_to_sustain_a_few_each_with_a_link(
    client, frozen, cleveland, rita, monkeypatch
):
    from tracker import sources

    monkeypatch.setattr(sources, "STRENGTHS_SHOWN", 2)
    shown = _strengths(_dashboard(client, rita)[0])
    assert "What to sustain" in shown and "not tracked as recommendations" in shown
    assert f"{cleveland.title} (3 strengths)" in shown
    assert shown.count("<li>") == 2  # the tracked 2025 inspection only; 2017 and 2018 are history
    assert f'href="{cleveland.get_absolute_url()}#strengths">All 3 strengths, 1 more,' in shown
    assert "/recommendations/" not in shown  # shown, never tracked
    # Chosen on its own, an inspection shows its own strengths.
    assert f"{cleveland.title} (3 strengths)" in _strengths(_dashboard(client, rita, f"?inspection={cleveland.pk}")[0])


def test_the_dashboards_strengths_stay_the_same_size_and_queries_however_many_there_are(
    client, frozen, cleveland, rita
):
    from tests.factories import FindingFactory
    from tracker.models import Finding

    html, queries = _dashboard(client, rita)
    for n in range(40):
        FindingFactory(inspection=cleveland, kind=Finding.Kind.STRENGTH, reference=f"ZS{n:02}", title="A strength")
    more_html, more_queries = _dashboard(client, rita)
    assert more_queries == queries
    assert _strengths(more_html).count("<li>") == _strengths(html).count("<li>") == 3
    assert "All 43 strengths, 40 more," in _strengths(more_html)
    assert "ZS00" not in more_html
