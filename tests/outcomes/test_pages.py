"""Issue 16 on the staff pages: the plan and measures on the recommendation page, and one page per write."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import RecommendationFactory
from tests.one_rule import MEASURE, last_periods, submitted
from tracker import workflow
from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, RecommendationEvent

pytestmark = pytest.mark.django_db
Event = RecommendationEvent.Action


@pytest.fixture
def coc(org, olly, rita):
    rec = RecommendationFactory(
        finding__inspection__organisation=org,
        finding__kind="cause_of_concern",
        owner=olly,
        title="Find missing children",
    )
    rec = submitted(rec, olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    rec.refresh_from_db()
    return rec


def _date(prefix: str, day: dt.date) -> dict:
    return {f"{prefix}-day": day.day, f"{prefix}-month": day.month, f"{prefix}-year": day.year}


def test_a_lead_plans_two_owners_complete_theirs_and_the_page_counts_them(client, rec, lead, olly, otto):
    client.force_login(lead)
    due = timezone.localdate() + dt.timedelta(days=30)
    for owner in (olly, otto, otto):
        response = client.post(
            reverse("tracker:plan-add", args=[rec.pk]),
            {"description": f"Job for {owner.username}", "owner": owner.pk, **_date("due_date", due)},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
    assert rec.plan_actions.count() == 3

    # otto completes his from his own action's page: he cannot see olly's recommendation, only his action.
    client.force_login(otto)
    assert client.get(rec.get_absolute_url()).status_code == 404
    for item in rec.plan_actions.filter(owner=otto):
        url = reverse("tracker:plan-action", args=[item.pk])
        assert client.get(url).status_code == 200
        response = client.post(url, {"status": "done", "version": item.version})
        assert response.status_code == 302 and response["Location"] == reverse("tracker:home")
    ollys = rec.plan_actions.get(owner=olly)
    assert client.get(reverse("tracker:plan-action", args=[ollys.pk])).status_code == 404

    client.force_login(olly)
    html = client.get(rec.get_absolute_url()).content.decode()
    assert re.search(r"<strong>2 of 3</strong>\s*actions done", html)
    assert f"next due {due:%-d %B %Y}" in html
    assert reverse("tracker:plan-action", args=[ollys.pk]) in html


def test_blocked_without_a_reason_is_refused_with_a_message_and_changes_nothing(client, rec, olly):
    item = workflow.add_plan_action(rec, by=olly, description="Audit", owner=olly, due_date=dt.date(2027, 1, 31))
    client.force_login(olly)
    response = client.post(reverse("tracker:plan-action", args=[item.pk]), {"status": "blocked", "version": 1})
    assert response.status_code == 200
    assert "Say why the action is blocked" in response.content.decode()
    item.refresh_from_db()
    assert (item.status, item.version) == ("not_started", 1)


def test_moving_an_actions_date_without_a_reason_is_refused(client, rec, lead, olly):
    item = workflow.add_plan_action(rec, by=olly, description="Audit", owner=olly, due_date=dt.date(2027, 1, 31))
    client.force_login(lead)
    data = {"description": "Audit", "owner": olly.pk, "version": 1, **_date("due_date", dt.date(2027, 3, 31))}
    response = client.post(reverse("tracker:plan-action-change", args=[item.pk]), data)
    assert "Give a reason for moving the action" in response.content.decode()
    response = client.post(reverse("tracker:plan-action-change", args=[item.pk]), {**data, "reason": "Analyst ill"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.due_date == dt.date(2027, 3, 31)


def test_a_measure_is_added_its_data_entered_and_corrected_and_the_page_draws_it(client, coc, lead, olly, rita):
    client.force_login(lead)
    data = {
        **{k: MEASURE[k] for k in ("name", "definition", "unit", "direction", "frequency")},
        "baseline_value": "61",
        **_date("baseline_period", dt.date(2025, 1, 1)),
        "target_value": "90",
        **_date("target_date", dt.date(2027, 3, 31)),
        "supplier": olly.pk,
        "version": coc.version,
    }
    assert client.post(reverse("tracker:measure-add", args=[coc.pk]), data).status_code == 302
    measure = coc.measures.get()
    client.force_login(olly)
    for period, value in zip(last_periods(3), ("80", "91", "95"), strict=True):
        response = client.post(
            reverse("tracker:measure-data", args=[measure.pk]), {"value": value, **_date("period", period)}
        )
        assert response.status_code == 302
    point = measure.data_points.get(period=last_periods(3)[0])
    url = reverse("tracker:measure-data-correct", args=[measure.pk, point.pk])
    response = client.post(url, {"value": "92", "note": "", "version": 1})
    assert "Enter reason for the correction" in response.content.decode()
    assert client.post(url, {"value": "92", "note": "", "version": 1, "reason": "Late returns"}).status_code == 302
    point.refresh_from_db()
    assert point.value == Decimal("92")

    client.force_login(rita)
    html = client.get(coc.get_absolute_url()).content.decode()
    assert '<svg role="img" aria-labelledby="chart-measure-' in html
    assert "92%" in html and "Late returns" in html
    assert 'data-action="close"' in html  # three periods at target: it may close


def test_closing_is_refused_while_the_measure_is_below_target_and_the_page_says_which(client, coc, olly, rita):
    measure = workflow.add_measure(coc, by=olly, supplier=olly, **MEASURE)
    for period, value in zip(last_periods(3), (80, 91, 95), strict=True):
        workflow.enter_measure_data(measure, by=olly, period=period, value=value)
    client.force_login(rita)
    html = client.get(coc.get_absolute_url()).content.decode()
    assert 'data-action="close"' not in html
    assert "“Missing children found within 24 hours” met its target (at least 90%) in 2 of the last 3" in html
    response = client.post(reverse("tracker:decide", args=[coc.pk]), {"decision": "close", "version": coc.version})
    coc.refresh_from_db()
    assert coc.status == "awaiting_assurance"
    assert "Missing children found within 24 hours" in response.content.decode()

    # An override with a reason, by someone who did none of the work, lets it close.
    assert 'data-action="override_outcome_gate"' in html
    url = reverse("tracker:outcome-override", args=[coc.pk])
    assert "Give a reason" in client.post(url, {"reason": "", "version": coc.version}).content.decode()
    assert client.post(url, {"reason": "Audit shows sustained change", "version": coc.version}).status_code == 302
    coc.refresh_from_db()
    assert 'data-action="close"' in client.get(coc.get_absolute_url()).content.decode()


def test_a_lead_marks_a_recommendation_outcome_gated(client, rec, lead, olly):
    client.force_login(olly)
    assert client.get(reverse("tracker:outcome-gated", args=[rec.pk])).status_code == 403
    client.force_login(lead)
    response = client.post(reverse("tracker:outcome-gated", args=[rec.pk]), {"gated": "yes", "version": rec.version})
    assert response.status_code == 302
    rec.refresh_from_db()
    assert rec.outcome_gated


def _grow(rec, measure, owner, count: int) -> None:
    start = PlanAction.objects.filter(recommendation=rec).count()
    PlanAction.objects.bulk_create(
        PlanAction(
            recommendation=rec,
            description=f"Action {i}",
            owner=owner,
            due_date=dt.date(2026, 1, 1) + dt.timedelta(days=i),
        )
        for i in range(start, start + count)
    )
    have = measure.data_points.count()
    periods = last_periods(have + count, dt.date(2026, 12, 1))[:count]
    MeasureDataPoint.objects.bulk_create(
        MeasureDataPoint(measure=measure, period=period, value=80 + i % 20, entered_by=owner)
        for i, period in enumerate(periods)
    )


@pytest.mark.parametrize("persona", ["olly", "rita"])
def test_the_recommendation_page_runs_the_same_queries_at_10_and_500_actions_and_data_points(
    client, request, coc, olly, persona
):
    measure = OutcomeMeasure.objects.create(recommendation=coc, supplier=olly, **MEASURE)
    client.force_login(request.getfixturevalue(persona))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(coc.get_absolute_url()).status_code == 200
        return len(captured)

    _grow(coc, measure, olly, 10)
    at_10 = queries()
    _grow(coc, measure, olly, 490)
    assert measure.data_points.count() == 500 and coc.plan_actions.count() == 500
    assert queries() == at_10


def test_an_action_owners_home_lists_their_actions_and_a_supplier_the_data_due(client, rec, lead, olly, otto):
    mine = workflow.add_plan_action(
        rec, by=lead, description="Brief the night shift", owner=otto, due_date=dt.date(2026, 1, 5)
    )
    workflow.add_plan_action(rec, by=lead, description="Not otto's", owner=olly, due_date=dt.date(2026, 1, 5))
    workflow.add_measure(rec, by=lead, supplier=otto, **MEASURE)
    client.force_login(otto)
    html = client.get(reverse("tracker:home")).content.decode()
    assert reverse("tracker:plan-action", args=[mine.pk]) in html and "Brief the night shift" in html
    assert "Not otto" not in html
    assert "Measure data due from you" in html and "Missing children found within 24 hours" in html
    # The recommendation's owner sees all of its plan on its page, but only their own actions at home.
    client.force_login(olly)
    html = client.get(reverse("tracker:home")).content.decode()
    assert "Not otto" in html and "Brief the night shift" not in html and "Measure data due" not in html


def test_the_board_pack_shows_moved_action_dates_and_the_override_with_their_reasons(client, coc, lead, olly, rita):
    item = workflow.add_plan_action(coc, by=olly, description="Audit", owner=olly, due_date=dt.date(2027, 1, 31))
    workflow.change_plan_action(
        item, by=lead, description="Audit", owner=olly, due_date=dt.date(2027, 3, 31), reason="Analyst on leave"
    )
    workflow.override_outcome_gate(coc, by=rita, reason="Case audit shows sustained change")
    client.force_login(rita)
    html = client.get(reverse("tracker:board-pack", args=[coc.finding.inspection_id])).content.decode()
    assert "Plan action due date moved" in html and "Analyst on leave" in html
    assert "Outcome gate overridden" in html and "Case audit shows sustained change" in html


def test_a_cancelled_override_is_not_shown_after_reopening(client, coc, lead, rita, olly):
    workflow.override_outcome_gate(coc, by=rita, reason="Sustained change seen in audit")
    client.force_login(rita)
    assert "Sustained change seen in audit" in client.get(coc.get_absolute_url()).content.decode()
    workflow.close(coc, by=rita)
    workflow.reopen(coc, by=lead, reason="Drift found")
    assert 'id="outcome-override"' not in client.get(coc.get_absolute_url()).content.decode()
