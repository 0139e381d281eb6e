"""A governance lead sets the inspection's action plan and revisit dates through a page: GOV.UK date
inputs, a reason to move or clear a date already set, history kept, refused to everyone else (by
``tracker.policy``) and confined to the lead's own organisation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.factories import InspectionFactory
from tests.web.dates import date_post_data
from tracker import deadlines, policy, workflow
from tracker.errors import StaleRecommendation, WorkflowError
from tracker.permissions import NotPermitted

pytestmark = pytest.mark.django_db

PUBLISHED = dt.date(2025, 1, 15)


@pytest.fixture
def report(org):
    return InspectionFactory(organisation=org, title="The 2025 report", published=PUBLISHED)


def url(inspection) -> str:
    return reverse("tracker:inspection-dates", args=[inspection.pk])


def post(client, inspection, plan=None, revisit=None, reason="", shown=None):
    data = {**date_post_data("action_plan_due", plan), **date_post_data("revisit_due", revisit), "reason": reason}
    if shown is None:
        shown = "|".join(d.isoformat() if d else "" for d in (inspection.action_plan_due, inspection.revisit_due))
    data["shown"] = shown
    return client.post(url(inspection), data)


def test_a_lead_sets_both_dates_and_the_inspection_page_shows_them_as_deadlines(client, lead, report):
    client.force_login(lead)
    page = client.get(report.get_absolute_url()).content.decode()
    assert f'href="{url(report)}"' in page
    form = client.get(url(report)).content.decode()
    for name in ("action_plan_due-day", "action_plan_due-month", "action_plan_due-year", "revisit_due-year"):
        assert f'name="{name}"' in form  # the GOV.UK date input: three boxes each
    response = post(client, report, plan=dt.date(2025, 4, 14), revisit=dt.date(2025, 10, 1))
    assert response.status_code == 302 and response.url.endswith("#deadlines")
    report.refresh_from_db()
    assert (report.action_plan_due, report.revisit_due) == (dt.date(2025, 4, 14), dt.date(2025, 10, 1))
    latest = report.history.latest("history_date")
    assert latest.history_user == lead and latest.history_change_reason == "Dates set"
    assert [d.label for d in deadlines.for_inspection(report)] == [
        deadlines.PCC_RESPONSE,
        deadlines.ACTION_PLAN,
        deadlines.REVISIT,
    ]
    shown = client.get(report.get_absolute_url()).content.decode()
    assert "14 April 2025" in shown and "1 October 2025" in shown


def test_moving_or_clearing_a_date_needs_a_reason_and_history_keeps_both(client, lead, report):
    client.force_login(lead)
    post(client, report, plan=dt.date(2025, 4, 14))
    report.refresh_from_db()
    refused = post(client, report, plan=dt.date(2025, 5, 1))
    assert refused.status_code == 200 and "Give a reason for moving or removing the action plan date" in (
        refused.content.decode()
    )
    report.refresh_from_db()
    assert report.action_plan_due == dt.date(2025, 4, 14)
    assert post(client, report, plan=None, reason="Superseded by the joint plan").status_code == 302
    report.refresh_from_db()
    assert report.action_plan_due is None
    history = list(report.history.order_by("history_date").values_list("action_plan_due", "history_change_reason"))
    assert history[-2:] == [(dt.date(2025, 4, 14), "Dates set"), (None, "Superseded by the joint plan")]


def test_a_date_before_publication_or_not_real_is_refused_in_govuk_words(client, lead, report):
    client.force_login(lead)
    html = post(client, report, plan=dt.date(2025, 1, 1)).content.decode()
    assert "There is a problem" in html and "cannot be before the report was published (15 January 2025)" in html
    html = post(client, report, revisit=("31", "2", "2025")).content.decode()
    assert "The revisit date must be a real date" in html
    report.refresh_from_db()
    assert report.action_plan_due is None and report.revisit_due is None


def test_a_change_made_meanwhile_is_not_overwritten(client, lead, report):
    client.force_login(lead)
    shown = "|"  # the page showed no dates
    workflow.set_inspection_dates(report, by=lead, action_plan_due=dt.date(2025, 3, 1), revisit_due=None)
    html = post(client, report, plan=dt.date(2025, 4, 1), shown=shown).content.decode()
    assert "changed by someone else" in html
    report.refresh_from_db()
    assert report.action_plan_due == dt.date(2025, 3, 1)
    with pytest.raises(StaleRecommendation):
        workflow.set_inspection_dates(
            report, by=lead, action_plan_due=None, revisit_due=None, reason="x", expected=(None, None)
        )


@pytest.mark.parametrize("persona", ["rita", "olly", "vic"])
def test_everyone_but_a_lead_is_refused_by_the_policy(client, request, report, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    decision = policy.decide_inspection_dates(user, report)
    assert not decision and decision.by_role
    assert f'href="{url(report)}"' not in client.get(report.get_absolute_url()).content.decode()
    assert client.get(url(report)).status_code == 403
    assert post(client, report, plan=dt.date(2025, 4, 14)).status_code == 403
    with pytest.raises(NotPermitted):
        workflow.set_inspection_dates(report, by=user, action_plan_due=dt.date(2025, 4, 14), revisit_due=None)
    report.refresh_from_db()
    assert report.action_plan_due is None


def test_another_organisations_lead_finds_nothing(client, other_org, report):
    from tests.factories import UserFactory
    from tracker.permissions import Role

    stranger = UserFactory(organisation=other_org, roles=[Role.GOVERNANCE_LEAD])
    client.force_login(stranger)
    assert client.get(url(report)).status_code == 404
    assert post(client, report, plan=dt.date(2025, 4, 14)).status_code == 404
    with pytest.raises(NotPermitted):
        workflow.set_inspection_dates(report, by=stranger, action_plan_due=dt.date(2025, 4, 14), revisit_due=None)


def test_an_untracked_inspection_has_no_dates_to_set(client, lead, org):
    history = InspectionFactory(organisation=org, tracked=False, published=PUBLISHED)
    client.force_login(lead)
    assert f'href="{url(history)}"' not in client.get(history.get_absolute_url()).content.decode()
    refused = client.get(url(history))
    assert refused.status_code == 409 and policy.UNTRACKED_DATES in refused.content.decode()
    with pytest.raises(WorkflowError):  # refused by state, not by role
        workflow.set_inspection_dates(history, by=lead, action_plan_due=dt.date(2025, 4, 14), revisit_due=None)
