"""A lead's home lists the inspection deadlines approaching or recently passed, each with the days left
or passed and a link to its inspection; nobody else's home does, and no other organisation's shows."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from tests.factories import InspectionFactory
from tracker import deadlines

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 1)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC), tick=False):
        yield


def home(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("tracker:home"))
    assert response.status_code == 200
    return response.content.decode()


def group(html: str) -> str:
    start = html.index('id="inspection-deadlines"')
    return html[start : html.index("</section>", start)]


def test_a_lead_sees_deadlines_approaching_and_passed_with_days_and_a_link(client, org, other_org, lead):
    report = InspectionFactory(organisation=org, title="The 2025 report", published=dt.date(2025, 1, 15))
    passed = InspectionFactory(
        organisation=org, title="The plan overdue", published=dt.date(2024, 6, 1), action_plan_due=dt.date(2025, 2, 20)
    )
    long_ago = InspectionFactory(
        organisation=org, title="Long ago", published=dt.date(2023, 1, 1), revisit_due=dt.date(2024, 1, 1)
    )
    far_off = InspectionFactory(organisation=org, title="Far off", revisit_due=dt.date(2026, 1, 1))
    elsewhere = InspectionFactory(organisation=other_org, title="Elsewhere's report", published=dt.date(2025, 1, 20))
    shown = group(home(client, lead))
    assert "Inspection deadlines" in shown and 'govuk-tag--blue">2</span>' in shown
    # The PCC's response: 15 January + 56 days = 12 March, 11 days from 1 March.
    assert "Police and crime commissioner&#x27;s published response" in shown
    assert "12 March 2025" in shown and "11 days left" in shown
    assert f'href="{report.get_absolute_url()}#deadlines">The 2025 report</a>' in shown
    # A passed one says so, and how long ago.
    assert "Force&#x27;s action plan" in shown and "20 February 2025" in shown and "Passed 9 days ago" in shown
    assert f'href="{passed.get_absolute_url()}#deadlines"' in shown
    assert shown.index("20 February 2025") < shown.index("12 March 2025")  # soonest first
    for absent in (long_ago, far_off, elsewhere):
        assert absent.title not in shown


def test_only_a_leads_home_has_inspection_deadlines(client, org, olly, rita, vic):
    InspectionFactory(organisation=org, published=dt.date(2025, 1, 15))
    for user in (olly, rita, vic):
        assert 'id="inspection-deadlines"' not in home(client, user)


def test_a_lead_with_no_deadline_near_is_told_so(client, lead):
    shown = group(home(client, lead))
    assert f"No inspection deadline falls in the next {deadlines.INBOX_AHEAD_DAYS} days" in shown


def test_the_window_is_inclusive_at_both_ends(org):
    ahead = TODAY + dt.timedelta(days=deadlines.INBOX_AHEAD_DAYS)
    behind = TODAY - dt.timedelta(days=deadlines.INBOX_PASSED_DAYS)
    for date in (ahead, behind, ahead + dt.timedelta(days=1), behind - dt.timedelta(days=1)):
        InspectionFactory(organisation=org, title=f"{date}", revisit_due=date)
    found = deadlines.approaching_or_passed(org.inspections.all(), TODAY)
    assert [d.date for d in found] == [behind, ahead]
