"""In Chromium: the cause-of-concern rule shows before it bites, and each page stays clean under axe-core.

An owner follows the checklist's links from a refused submission to outcome evidence (the form showing
only the chosen kind's field) and submits; the reviewer follows the decision page's links to each piece of
evidence awaiting a verdict, then closes. Without JavaScript, the evidence form shows every kind's field.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import sign_in, snap
from tests.factories import FindingFactory, RecommendationFactory
from tests.one_rule import MEASURE, last_periods
from tests.web.test_browser import check_page, sign_out
from tracker import workflow
from tracker.models import Finding, Recommendation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cause_of_concern(inspection, olly):
    """Olly's cause of concern, in progress, with training delivered as its only evidence."""
    rec = RecommendationFactory(
        finding=FindingFactory(
            inspection=inspection,
            reference="CC2",
            title="Respond to children who go missing",
            kind=Finding.Kind.CAUSE_OF_CONCERN,
        ),
        owner=olly,
    )
    workflow.post_update(rec, by=olly, narrative="Training planned.")
    workflow.add_evidence(
        rec, by=olly, kind="note", category="output", description="Training delivered", note="40 officers"
    )
    # Its outcome measure has been at target for three months (issue 16), so evidence is what closing waits on.
    measure = workflow.add_measure(rec, by=olly, supplier=olly, **MEASURE)
    for period, value in zip(last_periods(3), (90, 92, 95), strict=True):
        workflow.enter_measure_data(measure, by=olly, period=period, value=value)
    return rec


def _row(page: Page, key: str):
    return page.locator(f'[data-condition="{key}"]')


def test_the_checklist_leads_an_owner_to_outcome_evidence_and_a_reviewer_to_each_verdict(
    page: Page, live_server, olly, rita, cause_of_concern
):
    base, rec = live_server.url, cause_of_concern
    sign_in(page, base, "olly")
    page.goto(f"{base}{rec.get_absolute_url()}")
    expect(page.get_by_role("heading", name="What closing needs")).to_be_visible()
    expect(_row(page, "awaiting_assurance")).to_contain_text("Not yet")
    expect(_row(page, "awaiting_assurance")).to_contain_text("A cause of concern needs evidence of an outcome")
    expect(_row(page, "four_eyes")).to_contain_text("When closing")
    check_page(page, "50-recommendation-closing-checklist")
    page.set_viewport_size({"width": 375, "height": 800})  # on a phone: nothing wider than the screen
    snap(page, "50a-phone-closing-checklist")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 800})

    # The submit page, refused, names what is missing and links to fix it.
    page.goto(f"{base}/recommendations/{rec.pk}/submit/")
    expect(page.get_by_role("heading", name="What submitting needs")).to_be_visible()
    expect(_row(page, "outcome_evidence")).to_contain_text("Not yet")
    check_page(page, "51-submit-what-is-missing")
    _row(page, "outcome_evidence").get_by_role("link", name="Add outcome evidence").click()

    # The evidence form: outcome already chosen; only the chosen kind's field shows.
    expect(page.get_by_label(re.compile("^Outcome"))).to_be_checked()
    for label in ("File to upload", "Web address of the evidence", "Text of the note"):
        expect(page.get_by_label(label)).to_be_hidden()
    page.get_by_role("radio", name="Link").check()
    expect(page.locator("#id_link")).to_be_visible()
    expect(page.locator("#id_file")).to_be_hidden()
    expect(page.locator("#id_note")).to_be_hidden()
    check_page(page, "52-evidence-form-link-chosen")
    page.get_by_role("button", name="Add evidence").click()  # the link is missing: the server says so
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter the web address of the evidence")
    expect(page.locator("#id_link")).to_be_visible()
    check_page(page, "53-evidence-form-errors")
    page.locator(".govuk-error-summary").get_by_role("link", name="Enter the web address of the evidence").click()
    expect(page.locator("#id_link")).to_be_focused()
    page.locator("#id_link").fill("https://example.org/missing-children-audit")
    page.get_by_label("Describe what this evidence shows").fill("Audit of response times to missing children")
    page.get_by_role("button", name="Add evidence").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Your evidence has been added.")

    # Now it may be submitted: the submit page shows every condition met.
    _row(page, "awaiting_assurance").get_by_role("link", name="Submit it now").click()
    expect(page.locator('[data-checklist="submit-checklist"] [data-met="no"]')).to_have_count(0)
    check_page(page, "54-submit-ready")
    page.get_by_role("button", name="Submit for assurance").click()
    expect(page.locator(".govuk-summary-list").first).to_contain_text("Awaiting assurance")
    sign_out(page)

    # The reviewer: the decision page names both pieces of evidence awaiting a verdict, with a link to each.
    sign_in(page, base, "rita")
    page.goto(f"{base}/recommendations/{rec.pk}/decision/")
    reviewed = _row(page, "reviewed")
    expect(reviewed).to_contain_text("2 evidence item(s) still await a verdict")
    expect(reviewed.get_by_role("link", name=re.compile("^Give it a verdict"))).to_have_count(2)
    check_page(page, "55-decision-awaiting-verdicts")
    for _ in range(2):
        page.goto(f"{base}/recommendations/{rec.pk}/decision/")
        _row(page, "reviewed").get_by_role("link", name=re.compile("^Give it a verdict")).first.click()
        page.get_by_label("Accept this evidence").check()
        page.get_by_role("button", name="Record verdict").click()
        expect(page.locator(".govuk-notification-banner--success")).to_contain_text("accepted")
    page.goto(f"{base}/recommendations/{rec.pk}/decision/")
    expect(page.locator('[data-checklist="closing-checklist"] [data-met="no"]')).to_have_count(0)
    check_page(page, "56-decision-ready")
    page.get_by_label("Accept and close the recommendation").check()
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("accepted and closed")
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.CLOSED


def test_without_javascript_the_evidence_form_shows_every_kind_labelled(browser, live_server, olly, cause_of_concern):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server.url, "olly")
    page.goto(f"{live_server.url}/recommendations/{cause_of_concern.pk}/evidence/")
    for field in ("#id_file", "#id_link", "#id_note"):
        expect(page.locator(field)).to_be_visible()
    expect(page.get_by_label("File to upload")).to_be_visible()
    # Each field sits under its own kind's radio.
    expect(page.locator("#conditional-id_kind-link")).to_contain_text("For a link")
    page.get_by_role("radio", name="Note").check()
    page.get_by_label(re.compile("^Outcome")).check()
    page.get_by_label("Describe what this evidence shows").fill("Dip sample of missing episodes")
    page.locator("#id_note").fill("Sampled 40 episodes; response within the hour in 38.")
    page.get_by_role("button", name="Add evidence").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("Your evidence has been added.")
    snap(page, "57-no-javascript-evidence")
    context.close()
    assert cause_of_concern.evidence.filter(kind="note", category="outcome").count() == 1
