"""Issue 16 in real Chromium: a plan, an action owner completing theirs from home, the outcome gate and
an override, with axe-core on each new page (screenshots in var/test-artifacts/screenshots/)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import sign_in
from tests.factories import FindingFactory, RecommendationFactory
from tests.one_rule import MEASURE, last_periods, submitted
from tests.web.test_browser import check_page, sign_out
from tracker import workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_plan_is_completed_from_home_and_closure_waits_for_outcomes_or_an_override(
    page: Page, live_server, inspection, lead, olly, otto, rita
):
    base = live_server.url
    rec = RecommendationFactory(
        finding=FindingFactory(
            inspection=inspection, reference="CC1", kind="cause_of_concern", title="Missing children"
        ),
        owner=olly,
    )
    rec = submitted(rec, olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    measure = workflow.add_measure(rec, by=olly, supplier=olly, **MEASURE)
    for period, value in zip(last_periods(3), (80, 91, 95), strict=True):
        workflow.enter_measure_data(measure, by=olly, period=period, value=value)

    # The lead adds an action owned by otto.
    sign_in(page, base, "lead")
    page.goto(f"{base}{rec.get_absolute_url()}")
    page.get_by_role("link", name="Add an action to the plan").click()
    check_page(page, "i16-01-add-action")
    page.get_by_label("What will be done").fill("Brief the night shift on the missing-children procedure")
    page.get_by_label("Who owns this action").select_option(str(otto.pk))
    due = dt.date.today() + dt.timedelta(days=30)
    page.locator("#id_due_date-day").fill(str(due.day))
    page.locator("#id_due_date-month").fill(str(due.month))
    page.locator("#id_due_date-year").fill(str(due.year))
    page.get_by_role("button", name="Add action").click()
    expect(page.locator("#plan-summary")).to_contain_text("0 of 1")
    sign_out(page)

    # otto completes it from his home page, without seeing the recommendation itself.
    sign_in(page, base, "otto")
    page.get_by_role("link", name=re.compile("^Brief the night shift")).click()
    check_page(page, "i16-02-update-action")
    page.get_by_label("Done", exact=True).check()
    page.get_by_role("button", name="Save status").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("now done")
    sign_out(page)

    # The reviewer sees which measure holds it open, and records an override instead.
    sign_in(page, base, "rita")
    page.goto(f"{base}{rec.get_absolute_url()}")
    expect(page.locator("#plan-summary")).to_contain_text("1 of 1")
    expect(page.locator("[data-holding-open]")).to_contain_text("in 2 of the last 3 periods")
    expect(page.get_by_role("link", name="Accept and close")).to_have_count(0)
    check_page(page, "i16-03-recommendation-with-plan-and-measure")
    page.get_by_role("link", name="Record an outcome override").click()
    check_page(page, "i16-04-override")
    page.get_by_label("Why may it close without its measures at target?").fill("Case audit shows sustained change")
    page.get_by_role("button", name="Record override").click()
    expect(page.locator("#outcome-override")).to_contain_text("Case audit shows sustained change")
    expect(page.get_by_role("link", name="Accept and close")).to_be_visible()
