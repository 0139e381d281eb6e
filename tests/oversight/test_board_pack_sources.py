"""The board pack carries the inspection's deadlines and its strengths, quoted with honest labels."""

from __future__ import annotations

from django.urls import reverse


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
