"""Issue 16 in the admin: plan actions, measures and data points are read-only and scoped like the rest."""

import datetime as dt

import pytest
from django.urls import reverse

from tests.one_rule import MEASURE, last_periods
from tracker import workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(rec, lead, olly, otto):
    item = workflow.add_plan_action(
        rec, by=lead, description="Dip-sample cases", owner=otto, due_date=dt.date(2027, 1, 31)
    )
    measure = workflow.add_measure(rec, by=lead, supplier=olly, **MEASURE)
    point = workflow.enter_measure_data(measure, by=olly, period=last_periods(1)[0], value=88)
    return {"planaction": item, "outcomemeasure": measure, "measuredatapoint": point}


@pytest.mark.parametrize("model", ["planaction", "outcomemeasure", "measuredatapoint"])
def test_a_lead_reads_them_and_cannot_change_them_and_another_organisation_cannot_see_them(
    client, planned, lead, mallory, model
):
    from django.core.management import call_command

    call_command("loaddata", "groups", verbosity=0)
    obj = planned[model]
    change = reverse(f"admin:tracker_{model}_change", args=[obj.pk])
    client.force_login(lead)
    assert client.get(reverse(f"admin:tracker_{model}_changelist")).status_code == 200
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {}).status_code == 403
    assert client.get(reverse(f"admin:tracker_{model}_add")).status_code == 403
    client.force_login(mallory)
    assert client.get(change, follow=True).status_code == 404
    changelist = client.get(reverse(f"admin:tracker_{model}_changelist"))
    assert changelist.status_code in (200, 403) and b"Dip-sample" not in changelist.content
