"""The 2025 inspection page: five graded areas (two inferred, saying why), the strengths as what to
sustain, the two causes of concern in the report's words, and the PCC's 56-day deadline."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine

from tests.factories import UserFactory
from tracker.models import Inspection, Organisation
from tracker.permissions import Role
from tracker.seeding import seed


@pytest.fixture
def org(db):
    """Overrides tests/conftest.py's org: the personas belong to the seeded Cleveland Police."""
    seed()
    return Organisation.objects.get(slug="cleveland-police")


@pytest.fixture
def page(client, org):
    def get(today: dt.date) -> str:
        client.force_login(UserFactory(organisation=org, roles=[Role.REVIEWER]))
        inspection = Inspection.objects.get(slug="cleveland-police-2025-ncpi")
        with time_machine.travel(dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC), tick=False):
            return client.get(inspection.get_absolute_url()).content.decode()

    return get


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("<h2", start)
    return html[start:end]


def test_it_shows_all_five_graded_areas_with_the_two_inferred_ones_saying_why(page):
    html = page(dt.date(2025, 2, 1))
    table = html[html.index("Graded judgements") : html.index("</table>", html.index("Graded judgements"))]
    rows = re.findall(r'<tr class="govuk-table__row"><td class="govuk-table__cell">([^<]+)</td>', table)
    assert sorted(rows) == [
        "Assessing risk and referring",
        "Investigating child abuse, neglect and exploitation",
        "Leadership of child protection arrangements",
        "Responding to children at risk of harm",
        "Working with safeguarding partners",
    ]
    assert table.count("Inadequate") == 2 and table.count("Requires improvement") == 2
    assert table.count("Adequate") == 1
    assert table.count(">Inferred<") == 2 and table.count("Inferred by elimination") == 2


def test_it_shows_the_strengths_as_what_to_sustain_not_as_recommendations(page):
    strengths = _section(page(dt.date(2025, 2, 1)), "strengths")
    assert "Strengths to sustain (3)" in strengths
    assert "not tracked as recommendations" in strengths
    assert "Chief officers and senior leaders understand their statutory responsibilities" in strengths
    assert "the force invests in partnerships" in strengths
    assert "/recommendations/" not in strengths


def test_it_shows_the_two_causes_of_concern_in_the_reports_words(page):
    html = page(dt.date(2025, 2, 1))
    concerns = html[html.index("Cause of concern (2)") : html.index("<h3", html.index("Cause of concern (2)"))]
    for words in (
        "The force doesn&#x27;t consistently recognise the risks posed to missing children. "
        "Nor does it respond to them effectively.",
        "the force needs to improve how it investigates cases involving children being sexually exploited online.",
    ):
        assert f'The inspectorate&#x27;s words</p>\n  <blockquote class="tracker-quote govuk-!-margin-0">“{words}' in (
            concerns
        )


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (dt.date(2025, 2, 1), "39 days left"),
        (dt.date(2025, 3, 11), "1 day left"),
        (dt.date(2025, 3, 12), "Due today"),
        (dt.date(2025, 4, 1), "Passed 20 days ago"),
    ],
)
def test_it_shows_the_pccs_56_day_deadline_with_the_days_left_or_passed(page, today, status):
    deadlines = _section(page(today), "deadlines")
    assert "Police and crime commissioner&#x27;s published response" in deadlines
    assert "12 March 2025" in deadlines  # 15 January 2025 + 56 days
    assert "56 days after publication on 15 January 2025 (Police Act 1996 s.55)" in deadlines
    assert status in deadlines
