"""Issue 16's data: the database refuses what the rules refuse, even when written around the workflow."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction


def _measure(rec, supplier, **kw) -> OutcomeMeasure:
    fields = {
        "recommendation": rec,
        "name": "Missing children found within 24 hours",
        "definition": "Share of missing-child episodes closed within 24 hours, from the force's case system.",
        "unit": "%",
        "direction": OutcomeMeasure.Direction.HIGHER,
        "baseline_value": Decimal("61"),
        "baseline_period": dt.date(2025, 1, 1),
        "target_value": Decimal("90"),
        "target_date": dt.date(2026, 12, 31),
        "frequency": OutcomeMeasure.Frequency.MONTHLY,
        "supplier": supplier,
        **kw,
    }
    return OutcomeMeasure.objects.create(**fields)


def test_a_blocked_action_without_a_reason_is_refused_by_the_database(rec, olly):
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanAction.objects.create(
            recommendation=rec, description="Train staff", owner=olly, due_date=dt.date(2027, 1, 1), status="blocked"
        )
    PlanAction.objects.create(
        recommendation=rec,
        description="Train staff",
        owner=olly,
        due_date=dt.date(2027, 1, 1),
        status="blocked",
        blocked_reason="No trainer until March",
    )


def test_an_unknown_action_status_is_refused_by_the_database(rec, olly):
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanAction.objects.create(
            recommendation=rec, description="Train staff", owner=olly, due_date=dt.date(2027, 1, 1), status="nearly"
        )


def test_a_measure_has_one_value_per_period_and_a_correction_says_why(rec, olly):
    measure = _measure(rec, olly)
    point = MeasureDataPoint.objects.create(measure=measure, period=dt.date(2026, 1, 1), value=70, entered_by=olly)
    with pytest.raises(IntegrityError), transaction.atomic():
        MeasureDataPoint.objects.create(measure=measure, period=dt.date(2026, 1, 1), value=71, entered_by=olly)
    with pytest.raises(IntegrityError), transaction.atomic():
        MeasureDataPoint.objects.filter(pk=point.pk).update(value=72, version=2)
    MeasureDataPoint.objects.filter(pk=point.pk).update(value=72, version=2, correction_reason="Late returns")


@pytest.mark.parametrize(("field", "value"), [("direction", "sideways"), ("frequency", "weekly")])
def test_a_measure_with_an_unknown_direction_or_frequency_is_refused_by_the_database(rec, olly, field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        _measure(rec, olly, **{field: value})


@pytest.mark.parametrize(
    ("direction", "value", "met"),
    [("higher", 90, True), ("higher", 89, False), ("lower", 90, True), ("lower", 91, False)],
)
def test_meeting_the_target_follows_the_direction(rec, olly, direction, value, met):
    assert _measure(rec, olly, direction=direction).meets_target(Decimal(value)) is met
