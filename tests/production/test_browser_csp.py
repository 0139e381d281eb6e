"""The Content-Security-Policy in real Chromium: our pages, the admin and GOV.UK Frontend's scripts all work under it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser import PASSWORD
from tests.factories import RecommendationFactory

pytestmark = pytest.mark.browser

# Installed before any page script (an init script is not subject to the page's policy).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def violations(page: Page) -> list[str]:
    page.wait_for_load_state("load")
    return page.evaluate("window.__cspViolations")


def test_pages_run_under_the_policy_without_a_single_violation(page: Page, live_server, role_permissions, lead, org):
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=lead)
    page.add_init_script(RECORD_VIOLATIONS)
    base = live_server.url

    page.goto(f"{base}{reverse('login')}")
    assert violations(page) == []
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Your inbox")).to_be_visible()

    for path in [
        reverse("tracker:home"),
        reverse("tracker:recommendation", args=[rec.pk]),
        reverse("tracker:dashboard"),
        reverse("admin:index"),
        reverse("admin:tracker_recommendation_change", args=[rec.pk]),
    ]:
        page.goto(f"{base}{path}")
        assert violations(page) == [], path
        if not path.startswith("/admin/"):
            # The nonce let both inline scripts run: the feature check, then GOV.UK Frontend's initAll().
            assert page.evaluate("document.body.classList.contains('govuk-frontend-supported')"), path
            assert page.locator("[data-govuk-skip-link-init]").count() == 1, path


def test_an_inline_script_without_the_nonce_is_refused(page: Page, live_server, lead):
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{live_server.url}{reverse('login')}")

    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__injected = true";
        document.body.append(script);
    }""")

    assert page.evaluate("window.__injected === undefined")
    assert [v for v in violations(page) if v.startswith("script-src")]


def test_the_admins_owner_search_works_in_the_browser_under_the_policy(
    page: Page, live_server, role_permissions, lead, olly, org
):
    """The owner box is searched as it is typed (select2, the admin's autocomplete), not a list of everyone:
    typing part of a name offers that owner, and saving assigns them through the workflow."""
    rec = RecommendationFactory(finding__inspection__organisation=org, owner=None)
    page.add_init_script(RECORD_VIOLATIONS)
    base = live_server.url
    page.goto(f"{base}{reverse('login')}")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Your inbox")).to_be_visible()

    page.goto(f"{base}{reverse('admin:tracker_recommendation_change', args=[rec.pk])}")
    page.locator(".field-owner .select2-selection").click()
    page.locator(".select2-search__field").fill(olly.last_name[:3])
    option = page.locator(".select2-results__option", has_text=str(olly))
    expect(option).to_be_visible()
    option.click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert violations(page) == []
    rec.refresh_from_db()
    assert rec.owner == olly
    assert rec.events.filter(action="owner_changed", actor=lead).exists()
