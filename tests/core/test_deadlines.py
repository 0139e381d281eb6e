"""Inspection deadlines: the PCC's response 56 days after publication (Police Act 1996 s.55), and the
action plan and revisit dates a governance lead sets (never before publication)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import RequestFactory

from tests.factories import InspectionFactory, OrganisationFactory
from tracker import deadlines
from tracker.models import Inspection, Organisation

PUBLISHED = dt.date(2025, 1, 15)


@pytest.fixture
def force(db):
    return OrganisationFactory(slug="force", name="Force", kind=Organisation.Kind.POLICE_FORCE)


def test_the_pccs_response_is_due_56_days_after_an_hmicfrs_report_on_a_police_force(force):
    report = InspectionFactory(organisation=force, published=PUBLISHED)
    assert report.pcc_response_due == dt.date(2025, 3, 12)
    assert InspectionFactory(organisation=force, published=None).pcc_response_due is None
    assert InspectionFactory(organisation=force, published=PUBLISHED, inspectorate="ofsted").pcc_response_due is None
    council = OrganisationFactory(slug="council", name="Council", kind=Organisation.Kind.LOCAL_AUTHORITY)
    assert InspectionFactory(organisation=council, published=PUBLISHED).pcc_response_due is None


def test_a_deadline_says_how_many_days_are_left_or_have_passed(force):
    [deadline] = deadlines.for_inspection(InspectionFactory(organisation=force, published=PUBLISHED))
    assert deadline.status(dt.date(2025, 3, 10)) == "2 days left"
    assert deadline.status(dt.date(2025, 3, 12)) == "Due today"
    assert deadline.status(dt.date(2025, 3, 13)) == "Passed 1 day ago"


def test_upcoming_gives_each_deadline_within_the_window_soonest_first_for_one_organisation(force):
    report = InspectionFactory(
        organisation=force,
        published=PUBLISHED,
        action_plan_due=dt.date(2025, 3, 1),
        revisit_due=dt.date(2025, 9, 1),
    )
    InspectionFactory(published=PUBLISHED, action_plan_due=dt.date(2025, 3, 2))  # another organisation's
    today = dt.date(2025, 2, 20)

    assert deadlines.upcoming(force, 30, today=today) == [
        (report, deadlines.ACTION_PLAN, dt.date(2025, 3, 1)),
        (report, deadlines.PCC_RESPONSE, dt.date(2025, 3, 12)),
    ]
    assert deadlines.upcoming(force.pk, 5, today=today) == []
    assert deadlines.upcoming(force, 30, today=dt.date(2025, 3, 5)) == [
        (report, deadlines.PCC_RESPONSE, dt.date(2025, 3, 12))
    ]  # a passed deadline is not upcoming
    assert [label for _, label, _ in deadlines.upcoming(force, 400, today=today)] == [
        deadlines.ACTION_PLAN,
        deadlines.PCC_RESPONSE,
        deadlines.REVISIT,
    ]


def test_a_lead_cannot_set_an_action_plan_or_revisit_date_before_publication(force, lead):
    call_command("loaddata", "groups", verbosity=0)  # the roles' permissions, as the admin reads them
    report = InspectionFactory(organisation=lead.organisation, published=PUBLISHED)
    report.action_plan_due = dt.date(2025, 1, 1)
    report.revisit_due = dt.date(2024, 12, 1)
    with pytest.raises(ValidationError) as refused:
        report.full_clean()
    assert set(refused.value.message_dict) == {"action_plan_due", "revisit_due"}
    assert "cannot be before the report was published (15 January 2025)" in refused.value.message_dict["revisit_due"][0]

    # The admin shows these dates but does not take them: the dates page is the one way in
    # (tests/core/test_inspection_dates_admin.py; tests/web/test_inspection_dates.py for its own refusals).
    request = RequestFactory().post("/")
    request.user = lead
    model_admin = admin.site._registry[Inspection]
    form_class = model_admin.get_form(request, report, change=True)
    assert not {"action_plan_due", "revisit_due"} & set(form_class.base_fields)
