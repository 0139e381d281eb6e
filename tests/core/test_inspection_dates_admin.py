"""The admin shows an inspection's action plan and revisit dates but does not change them: the dates page
(policy.decide_inspection_dates, a reason to move one, a stale-form check) is the only way in."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.factories import InspectionFactory, UserFactory
from tracker.permissions import Role

pytestmark = pytest.mark.django_db


def test_a_lead_cannot_move_the_dates_through_the_admin(client):
    call_command("loaddata", "groups", verbosity=0)
    inspection = InspectionFactory(published=dt.date(2025, 1, 15), action_plan_due=dt.date(2025, 3, 1))
    lead = UserFactory(organisation=inspection.organisation, roles=[Role.GOVERNANCE_LEAD], is_staff=True)
    client.force_login(lead)
    url = reverse("admin:tracker_inspection_change", args=[inspection.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert 'name="action_plan_due' not in page.text and 'name="revisit_due' not in page.text
    assert reverse("tracker:inspection-dates", args=[inspection.pk]) in page.text

    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update({"action_plan_due": "2026-12-31", "revisit_due": "2027-01-31"})
    client.post(url, data)
    inspection.refresh_from_db()
    assert (inspection.action_plan_due, inspection.revisit_due) == (dt.date(2025, 3, 1), None)
