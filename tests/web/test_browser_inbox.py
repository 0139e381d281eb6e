"""Each role's job done from its home in real Chromium, with the clicks counted and axe-core on every page.

Screenshots of each home and of the list at desktop and phone widths go to var/test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from tests.browser import serious_axe_violations, sign_in, snap
from tests.factories import FindingFactory, RecommendationFactory
from tests.one_rule import submitted
from tracker import workflow
from tracker.models import Recommendation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY_COLUMNS = ("Recommendation", "Owner", "Status", "RAG", "Review due")


class Clicks:
    """Every click, tick, choice and text box entered (one click to get into it) counts as one."""

    def __init__(self) -> None:
        self.count = 0

    def click(self, target: Locator) -> None:
        self.count += 1
        target.click()

    def check(self, target: Locator) -> None:
        self.count += 1
        target.check()

    def select(self, target: Locator, label: str) -> None:
        self.count += 1
        target.select_option(label=label)

    def fill(self, target: Locator, text: str) -> None:
        self.count += 1
        target.fill(text)


def check_page(page: Page, name: str) -> None:
    snap(page, name)
    assert serious_axe_violations(page) == [], name
    assert page.locator("h1").count() == 1, name


def sign_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("^Sign out")).click()


def _unowned(inspection, count: int, start: int = 1) -> list[Recommendation]:
    return [
        RecommendationFactory(
            finding=FindingFactory(
                inspection=inspection, reference=f"OBS{start + i}", title=f"Observation {start + i}"
            ),
            owner=None,
        )
        for i in range(count)
    ]


def _set_owner_date_and_rag(page: Page, clicks: Clicks, owner: str) -> None:
    form = page.locator("#bulk")
    clicks.select(form.get_by_label("Owner"), owner)
    dates = form.get_by_role("group", name="Target date")
    clicks.fill(dates.get_by_label("Day"), "31")
    clicks.fill(dates.get_by_label("Month"), "3")
    clicks.fill(dates.get_by_label("Year"), "2027")
    clicks.check(form.get_by_role("radio", name="Amber"))
    clicks.fill(form.get_by_label("Reason"), "Agreed at the improvement board")
    clicks.click(form.get_by_role("button", name="Apply to the selected recommendations"))


def test_the_lead_gives_owners_dates_and_rag_from_the_inbox(page: Page, live_server, lead, olly, inspection):
    """4 recommendations ticked one by one in under 15 clicks from home; then 10 in one bulk action."""
    base = live_server.url
    four, ten = _unowned(inspection, 4), _unowned(inspection, 10, start=5)
    sign_in(page, base, "lead")
    expect(page.locator("#group-no_owner h3")).to_contain_text("14")
    check_page(page, "50-home-governance-lead")

    clicks = Clicks()
    clicks.click(page.locator("#group-no_owner").get_by_role("link", name=re.compile("^See all 14")))
    expect(page.get_by_role("heading", level=2, name="14 recommendations")).to_be_visible()
    check_page(page, "51-list-no-owner")
    for rec in four:
        clicks.check(page.get_by_label(f"Select {rec.reference}", exact=True))
    _set_owner_date_and_rag(page, clicks, str(olly))
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("4 changed.")
    assert clicks.count < 15, clicks.count
    print(f"Clicks for owner, date and RAG on 4 recommendations, from home: {clicks.count}")
    for rec in four:
        rec.refresh_from_db()
        assert (rec.owner, rec.target_date, rec.rag) == (olly, dt.date(2027, 3, 31), "amber")

    # Back on the same filtered list: the 10 still without an owner, all in one bulk action.
    expect(page.get_by_role("heading", level=2, name="10 recommendations")).to_be_visible()
    clicks = Clicks()
    clicks.check(page.get_by_label("Every recommendation on this page"))
    _set_owner_date_and_rag(page, clicks, str(olly))
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("10 changed.")
    check_page(page, "52-list-after-bulk")
    assert Recommendation.objects.filter(pk__in=[r.pk for r in ten], owner=olly, rag="amber").count() == 10

    # Bad input: the error summary, and nothing changes.
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label(f"Select {four[0].reference}", exact=True).check()
    page.locator("#bulk").get_by_role("radio", name="Red").check()
    page.locator("#bulk").get_by_role("button", name="Apply to the selected recommendations").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Give one reason")
    check_page(page, "53-list-bulk-errors")
    four[0].refresh_from_db()
    assert four[0].rag == "amber"

    # The RAG page defines red, amber and green.
    page.goto(f"{base}/recommendations/{four[0].pk}/rag/")
    expect(page.locator(".tracker-rag-key")).to_contain_text("Off track")
    check_page(page, "54-set-rag")


def test_the_owner_sees_the_rejection_reason_at_the_top_of_home(page: Page, live_server, olly, rita, inspection):
    today = timezone.localdate()
    RecommendationFactory(finding__inspection=inspection, owner=olly, next_review_due=today - dt.timedelta(days=5))
    RecommendationFactory(finding__inspection=inspection, owner=olly, next_review_due=today + dt.timedelta(days=2))
    rec = RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="CC1", title="Respond to missing children"), owner=olly
    )
    rec = submitted(rec, olly)
    reason = "The audit sampled 5 episodes. Sample at least 40, across both districts, and show response times."
    workflow.reject(rec, by=rita, reason=reason)

    sign_in(page, live_server.url, "olly")
    banner = page.locator("#returned")
    expect(banner).to_contain_text(reason)
    # First thing under the heading: nothing to scroll past.
    first = page.evaluate("() => document.querySelector('h1').nextElementSibling.id")
    assert first == "returned"
    check_page(page, "55-home-owner")
    banner.get_by_role("link", name=re.compile("^CC1: ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("CC1: Respond to missing children")


def test_the_reviewer_clears_their_queue_from_the_inbox(page: Page, live_server, olly, rita, inspection):
    for ref in ("AFI1", "AFI2"):
        submitted(RecommendationFactory(finding=FindingFactory(inspection=inspection, reference=ref), owner=olly), olly)
    sign_in(page, live_server.url, "rita")
    awaiting = page.locator("#group-awaiting")
    expect(awaiting.locator("h3")).to_contain_text("2")
    check_page(page, "56-home-reviewer")
    for _ in range(2):
        awaiting.locator("tbody tr").first.get_by_role("link").click()
        page.get_by_role("link", name=re.compile("^Review")).click()
        page.get_by_label("Accept this evidence").check()
        page.get_by_role("button", name="Record verdict").click()
        page.get_by_role("link", name="Accept and close").click()
        page.get_by_label("Accept and close the recommendation").check()
        page.get_by_role("button", name="Record decision").click()
        expect(page.locator(".govuk-notification-banner--success")).to_contain_text("accepted and closed")
        page.get_by_role("link", name="Home", exact=True).click()
    expect(awaiting).to_contain_text("Nothing awaits your assurance.")
    check_page(page, "57-home-reviewer-queue-cleared")
    assert Recommendation.objects.filter(status=Recommendation.Status.CLOSED).count() == 2


def test_the_viewer_home_and_the_list_fit_at_1280_and_on_a_phone(page: Page, live_server, lead, vic, inspection):
    recs = _unowned(inspection, 6)
    workflow.assign_owner(recs[0], by=lead, owner=lead)
    workflow.set_rag(recs[1], by=lead, rag="red", reason="Stalled: partner data missing")
    Recommendation.objects.filter(pk=recs[2].pk).update(
        title="Make sure that children who go missing repeatedly are seen by the same trained officer every time"
    )
    sign_in(page, live_server.url, "vic")
    expect(page.locator("#changes")).to_contain_text("(2)")
    check_page(page, "58-home-viewer")
    sign_out(page)

    sign_in(page, live_server.url, "lead")
    for width, name in ((1280, "59-list-1280"), (375, "60-list-phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/recommendations/")
        check_page(page, name)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        scroller = page.locator(".tracker-table-scroll")
        assert scroller.evaluate("el => el.scrollWidth <= el.clientWidth"), f"hidden horizontal scroll at {width}"
        row = page.locator("table tbody tr").first
        for label in KEY_COLUMNS:
            cell = row.locator(f'td[data-label="{label}"]')
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, label, box)
            expect(cell).to_be_visible()
        # The skip link leads past the filters to the results.
        page.get_by_role("link", name="Skip to results").click()
        assert page.evaluate("() => location.hash") == "#results"
    page.set_viewport_size({"width": 1280, "height": 800})


def test_bulk_changes_work_without_javascript(browser, live_server, lead, inspection):
    recs = _unowned(inspection, 3)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/recommendations/?group=no_owner")
    for rec in recs[:2]:
        page.get_by_label(f"Select {rec.reference}", exact=True).check()
    page.locator("#bulk").get_by_role("radio", name="Red").check()
    page.locator("#bulk").get_by_label("Reason").fill("Board asked for an honest picture")
    page.locator("#bulk").get_by_role("button", name="Apply to the selected recommendations").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("2 changed.")
    snap(page, "61-bulk-no-javascript")
    context.close()
    assert [Recommendation.objects.get(pk=r.pk).rag for r in recs] == ["red", "red", ""]
