"""The staff pages in real Chromium (Playwright) against the live server, with axe-core on every page.

Screenshots of each page go to var/test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import serious_axe_violations, sign_in, snap
from tracker import workflow
from tracker.models import AccessLog, Finding, Judgement, Quotation, Recommendation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def check_page(page: Page, name: str) -> None:
    """Every staff page: a screenshot, no serious or critical axe violation, a skip link first in focus order."""
    snap(page, name)
    assert serious_axe_violations(page) == [], name
    assert page.locator("h1").count() == 1, name
    # Focus follows the document order (no positive tabindex), and the skip link comes first.
    first = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]"
    assert page.evaluate(f"() => document.querySelector('{first}').textContent.trim()") == "Skip to main content", name
    assert page.locator("[tabindex]:not([tabindex='-1']):not([tabindex='0'])").count() == 0, name


def sign_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("^Sign out")).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_axe_finds_violations_on_a_broken_page(page: Page):
    # Proves the accessibility check below can fail: an unlabelled input and an image without alt text.
    page.set_content('<html><body><img src="x.png"><input type="text"></body></html>')
    rules = {v["rule"] for v in serious_axe_violations(page)}
    assert {"image-alt", "label"} <= rules


def test_owner_updates_uploads_and_submits_then_reviewer_closes(
    page: Page, live_server, olly, rita, overdue_rec, soon_rec, later_rec, pdf_file
):
    base = live_server.url
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Anonymous: sent to sign in.
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    check_page(page, "01-sign-in")

    # The owner sees the overdue recommendation first.
    sign_in(page, base, "olly")
    first_row_link = page.locator("table").first.locator("tbody tr").first.get_by_role("link")
    expect(first_row_link).to_have_text(re.compile(r"^CC1: "))
    expect(page.locator("caption").first).to_contain_text("Your reviews overdue")
    check_page(page, "02-my-recommendations")

    first_row_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("CC1: Respond to missing children")
    check_page(page, "03-recommendation-not-started")

    # A progress update; first without a narrative, to see the error summary.
    page.get_by_role("link", name="Post a progress update").click()
    check_page(page, "04-progress-update-form")
    page.get_by_role("button", name="Save update").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Write what has happened since the last update")
    expect(page).to_have_title(re.compile("^Error: "))
    check_page(page, "05-progress-update-errors")
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("What has happened since the last update?")).to_be_focused()
    page.get_by_label("What has happened since the last update?").fill("Dip sample of 40 missing episodes begun.")
    page.get_by_label("Amber").check()
    page.get_by_label("I have completed a review of this recommendation").check()
    page.get_by_role("button", name="Save update").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Your update has been saved.")
    check_page(page, "06-recommendation-after-update")

    # Upload a PDF as outcome evidence.
    page.get_by_role("link", name="Add evidence").click()
    page.get_by_label("File", exact=True).check()
    page.get_by_label(re.compile("^Outcome")).check()
    page.get_by_label("Describe what this evidence shows").fill("Audit of response times to missing children")
    page.locator("input[type=file]").set_input_files(str(pdf_file))
    check_page(page, "07-add-evidence-form")
    page.get_by_role("button", name="Add evidence").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Your evidence has been added.")
    expect(page.get_by_role("link", name="Download audit-of-response-times.pdf")).to_be_visible()

    # Submit for assurance.
    page.get_by_role("link", name="Submit for assurance").click()
    check_page(page, "08-submit-for-assurance")
    page.get_by_role("button", name="Submit for assurance").click()
    expect(page.locator(".govuk-summary-list").first).to_contain_text("Awaiting assurance")
    check_page(page, "09-recommendation-awaiting-assurance")
    sign_out(page)

    # The reviewer downloads and accepts the evidence, then closes the recommendation.
    sign_in(page, base, "rita")
    page.goto(f"{base}{overdue_rec.get_absolute_url()}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download audit-of-response-times.pdf").click()
    assert download.value.suggested_filename == "audit-of-response-times.pdf"
    assert AccessLog.objects.filter(user=rita, action=AccessLog.Action.EVIDENCE_DOWNLOAD).count() == 1
    page.get_by_role("link", name=re.compile("^Review")).click()
    check_page(page, "10-review-evidence")
    page.get_by_label("Accept this evidence").check()
    page.get_by_role("button", name="Record verdict").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("The evidence has been accepted.")
    page.get_by_role("link", name="Accept and close").click()
    check_page(page, "11-assurance-decision")
    page.get_by_label("Accept and close the recommendation").check()
    page.get_by_label("Reason").fill("Audit shows response times within policy.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("accepted and closed")
    sign_out(page)

    # The owner sees it closed, with its history: no longer a task on home, but in the list of their own.
    sign_in(page, base, "olly")
    expect(page.locator("#group-overdue")).not_to_contain_text("CC1: ")
    page.get_by_role("link", name="All your recommendations, closed ones included").click()
    closed = page.locator("table tbody tr", has_text="Closed")
    expect(closed.get_by_role("link")).to_have_text(re.compile("^CC1: "))
    check_page(page, "12-my-recommendations-after-closure")
    closed.get_by_role("link").click()
    expect(page.locator(".govuk-summary-list").first).to_contain_text("Closed")
    timeline = page.locator("#timeline + ol")
    for entry in (
        "Work started",
        "Progress update",
        "Review completed",
        "Evidence added",
        "Submitted for assurance",
        "Evidence accepted",
        "Accepted and closed",
    ):
        expect(timeline).to_contain_text(entry)
    expect(page.get_by_role("link", name="Post a progress update")).to_have_count(0)
    check_page(page, "13-recommendation-closed")

    overdue_rec.refresh_from_db()
    assert overdue_rec.status == Recommendation.Status.CLOSED
    assert dialogs == []


def test_remaining_staff_pages_pass_axe_and_work_on_a_phone(
    page: Page, live_server, lead, olly, rita, vic, overdue_rec, later_rec, inspection
):
    base = live_server.url
    Judgement.objects.create(inspection=inspection, area="Overall effectiveness", grade="inadequate")
    hostile = "<script>alert(1)</script>{{ 7|add:1 }}"
    Finding.objects.filter(pk=overdue_rec.finding_id).update(summary=hostile)
    Quotation.objects.filter(finding_id=overdue_rec.finding_id).update(text=hostile)
    closed = _closed_recommendation(overdue_rec, olly, rita)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    sign_in(page, base, "lead")
    pages = {
        "20-all-recommendations": "/recommendations/",
        "21-all-recommendations-filtered": "/recommendations/?status=closed&overdue=false&sort=title",
        "22-inspection": inspection.get_absolute_url(),
        "23-reopen": f"/recommendations/{closed.pk}/reopen/",
        "24-change-owner": f"/recommendations/{later_rec.pk}/owner/",
        "25-change-target-date": f"/recommendations/{later_rec.pk}/target-date/",
        "25a-not-possible-now": f"/recommendations/{closed.pk}/target-date/",
        "26-change-password": "/accounts/password_change/",
        "27-recommendation-hostile-text": closed.get_absolute_url(),
    }
    for name, path in pages.items():
        page.goto(f"{base}{path}")
        check_page(page, name)
    expect(page.locator("blockquote")).to_contain_text(hostile)

    # A reopen with no reason: the error summary, then the field.
    page.goto(f"{base}/recommendations/{closed.pk}/reopen/")
    page.get_by_role("button", name="Reopen").click()
    expect(page.locator(".govuk-error-message")).to_contain_text("Give a reason for reopening")
    check_page(page, "28-reopen-errors")

    # The target date as a GOV.UK date input: an impossible date is refused, with the day marked.
    page.goto(f"{base}/recommendations/{later_rec.pk}/target-date/")
    dates = page.get_by_role("group", name="Target date")
    dates.get_by_label("Day").fill("31")
    dates.get_by_label("Month").fill("2")
    dates.get_by_label("Year").fill("2027")
    page.get_by_role("button", name="Change target date").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Target date must be a real date")
    expect(page.locator("#id_target_date-day")).to_have_class(re.compile("govuk-input--error"))
    check_page(page, "25b-change-target-date-errors")
    page.locator(".govuk-error-summary").get_by_role("link").click()
    expect(page.locator("#id_target_date-day")).to_be_focused()
    dates.get_by_label("Day").fill("28")
    page.get_by_role("button", name="Change target date").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "The target date is now 28 February 2027."
    )
    later_rec.refresh_from_db()
    assert str(later_rec.target_date) == "2027-02-28"

    # On a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 375, "height": 800})
    for name, path in (("29-phone-recommendation", closed.get_absolute_url()), ("30-phone-list", "/recommendations/")):
        page.goto(f"{base}{path}")
        snap(page, name)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), name
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_out(page)

    # A viewer asking for a form gets the refusal page.
    sign_in(page, base, "vic")
    response = page.goto(f"{base}/recommendations/{closed.pk}/update/")
    assert response.status == 403
    check_page(page, "31-not-permitted")
    sign_out(page)

    # Password reset, signed out.
    for name, path in (
        ("32-password-reset", "/accounts/password_reset/"),
        ("33-password-reset-sent", "/accounts/password_reset/done/"),
    ):
        page.goto(f"{base}{path}")
        check_page(page, name)
    assert dialogs == []


def test_forms_work_without_javascript(browser, live_server, olly, overdue_rec):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server.url, "olly")
    page.goto(f"{live_server.url}/recommendations/{overdue_rec.pk}/update/")
    page.get_by_label("What has happened since the last update?").fill("Posted with scripts switched off.")
    page.get_by_label("Red").check()
    page.get_by_role("button", name="Save update").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Your update has been saved.")
    snap(page, "40-no-javascript-update")
    context.close()
    overdue_rec.refresh_from_db()
    assert overdue_rec.rag == "red"


def _closed_recommendation(rec: Recommendation, owner, reviewer) -> Recommendation:
    workflow.post_update(rec, by=owner, narrative="Started")
    workflow.add_evidence(rec, by=owner, kind="note", category="outcome", description="Audit", note="Done")
    workflow.submit_for_assurance(rec, by=owner)
    workflow.review_evidence(rec.evidence.get(), by=reviewer, accept=True)
    workflow.close(rec, by=reviewer)
    rec.refresh_from_db()
    return rec
