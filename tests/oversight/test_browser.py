"""The dashboard, board pack and calendar page in real Chromium, with axe-core: no serious or critical violation.

Screenshots go to var/test-artifacts/screenshots/ (oversight-*.png).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import serious_axe_violations, sign_in, snap
from tracker import workflow
from tracker.models import Recommendation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_axe_reports_an_svg_chart_without_a_name(page: Page):
    # Proves the check below can fail for a chart: role="img" with no accessible name is serious.
    page.set_content(
        '<html lang="en"><body><main><svg role="img"><rect width="9" height="9"/></svg></main></body></html>'
    )
    assert "svg-img-alt" in {v["rule"] for v in serious_axe_violations(page)}


def test_dashboard_and_board_pack_in_chromium(page: Page, live_server, cleveland, lead, rita, olly):
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    workflow.assign_owner(recs["CC1"], by=lead, owner=olly)
    workflow.post_update(recs["CC1"], by=olly, narrative="Audit of missing episodes under way.", rag="amber")
    workflow.change_target_date(recs["CC1"], by=lead, target_date=recs["CC1"].next_review_due)
    base = live_server.url

    sign_in(page, base, "rita")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator('[data-figure="total"]')).to_have_text("19")
    expect(page.get_by_role("img", name="Recommendations by status")).to_be_visible()
    snap(page, "oversight-01-dashboard")
    assert serious_axe_violations(page) == []

    page.get_by_label("Inspection", exact=True).select_option(label=cleveland.title)
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Board pack for this inspection").click()
    expect(page.get_by_role("heading", name=cleveland.title, level=1)).to_be_visible()
    expect(page.get_by_text("Audit of missing episodes under way.")).to_be_visible()
    snap(page, "oversight-02-board-pack")
    assert serious_axe_violations(page) == []

    since = page.get_by_role("group", name="Show what changed since")
    since.get_by_label("Day").fill("30")
    since.get_by_label("Month").fill("2")
    since.get_by_label("Year").fill("2026")
    page.get_by_role("button", name="Show what changed since this date").click()
    expect(page.get_by_text("The date must be a real date").first).to_be_visible()
    since = page.get_by_role("group", name="Show what changed since")
    for part in ("Day", "Month", "Year"):
        since.get_by_label(part).fill("")
    page.get_by_role("button", name="Show what changed since this date").click()
    expect(page.get_by_role("heading", name="Recommendations (19)")).to_be_visible()
    expect(page.get_by_role("heading", name="Executive summary")).to_be_visible()

    page.goto(f"{base}/calendar/")
    page.get_by_role("link", name="Board pack", exact=True).click()  # the navigation: the latest inspection's
    expect(page.get_by_role("heading", name=cleveland.title, level=1)).to_be_visible()

    page.goto(f"{base}/calendar/")
    page.get_by_role("button", name="Make a calendar link").click()
    expect(page.get_by_label("Copy this link now: it is shown only once")).to_have_value(
        re.compile(r"/calendar/[A-Za-z0-9_-]{43}\.ics$")
    )
    snap(page, "oversight-03-calendar")
    assert serious_axe_violations(page) == []
