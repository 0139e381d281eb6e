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
