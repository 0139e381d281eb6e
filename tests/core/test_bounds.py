"""One bound for the review interval and a length limit on every free-text field, in Python and in the database."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.urls import reverse

from tests.core.test_admin import admin_lead, change_data, cleveland, worked_example  # noqa: F401 (fixtures)
from tests.factories import EvidenceFactory
from tracker import workflow
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    Evidence,
    Finding,
    ProgressUpdate,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Reminder,
)

TEXT_FIELDS = [
    (Finding, "summary"),
    (Quotation, "text"),
    (Recommendation, "outcome_measure"),
    (RecommendationEvent, "reason"),
    (ProgressUpdate, "narrative"),
    (Evidence, "description"),
    (Evidence, "note"),
    (Evidence, "rejection_reason"),
    (Reminder, "last_error"),
]


def test_every_text_field_has_a_length_limit():
    unbounded = [
        f"{model.__name__}.{field.name}"
        for model in (Finding, Quotation, Recommendation, RecommendationEvent, ProgressUpdate, Evidence, Reminder)
        for field in model._meta.get_fields()
        if isinstance(field, models.TextField) and not field.max_length
    ]

    assert unbounded == []


@pytest.mark.parametrize(("model", "field"), TEXT_FIELDS)
def test_model_validation_refuses_text_over_the_limit_naming_it(model, field):
    limit = model._meta.get_field(field).max_length

    with pytest.raises(ValidationError) as refused:
        model._meta.get_field(field).clean("x" * (limit + 1), None)

    assert str(limit) in " ".join(refused.value.messages)


def test_the_database_refuses_an_over_long_narrative(rec, olly):
    update = workflow.post_update(rec, by=olly, narrative="Short")
    limit = ProgressUpdate._meta.get_field("narrative").max_length

    with pytest.raises(IntegrityError), transaction.atomic():
        ProgressUpdate.objects.filter(pk=update.pk).update(narrative="x" * (limit + 1))


def test_the_database_refuses_an_over_long_evidence_note(rec, olly):
    evidence = EvidenceFactory(recommendation=rec, added_by=olly)
    limit = Evidence._meta.get_field("note").max_length

    with pytest.raises(IntegrityError), transaction.atomic():
        Evidence.objects.filter(pk=evidence.pk).update(note="x" * (limit + 1))


def test_model_validation_refuses_a_review_interval_beyond_the_bound(rec):
    rec.review_interval_days = MAX_REVIEW_INTERVAL_DAYS + 1

    with pytest.raises(ValidationError) as refused:
        rec.full_clean()

    assert "review_interval_days" in refused.value.message_dict


@pytest.mark.parametrize("days", [0, MAX_REVIEW_INTERVAL_DAYS + 1, 999_999_999])
def test_the_database_refuses_a_review_interval_out_of_range(rec, days):
    with pytest.raises(IntegrityError), transaction.atomic():
        Recommendation.objects.filter(pk=rec.pk).update(review_interval_days=days)


def test_the_database_accepts_the_largest_review_interval(rec):
    Recommendation.objects.filter(pk=rec.pk).update(review_interval_days=MAX_REVIEW_INTERVAL_DAYS)


def test_the_admin_refuses_a_review_interval_beyond_the_bound(client, admin_lead, worked_example):  # noqa: F811
    client.force_login(admin_lead)
    rec = worked_example
    before = rec.review_interval_days
    url = reverse("admin:tracker_recommendation_change", args=[rec.pk])

    response = client.post(url, change_data(rec, client, review_interval_days=999_999_999, reason="Never"))

    assert response.status_code == 200
    assert f"less than or equal to {MAX_REVIEW_INTERVAL_DAYS}" in response.content.decode()
    rec.refresh_from_db()
    assert rec.review_interval_days == before


def test_the_admin_bulk_action_refuses_a_review_interval_beyond_the_bound(client, admin_lead, worked_example):  # noqa: F811
    client.force_login(admin_lead)
    before = worked_example.review_interval_days

    client.post(
        reverse("admin:tracker_recommendation_changelist"),
        {"action": "set_review_interval", "_selected_action": [worked_example.pk], "interval_days": 999_999_999,
         "index": 0},
    )  # fmt: skip

    worked_example.refresh_from_db()
    assert worked_example.review_interval_days == before


@pytest.mark.django_db(transaction=True)
def test_the_bounds_migration_names_rows_over_the_limits_and_changes_nothing():
    """A database that already holds a 999,999,999-day interval is told which row to fix, not crashed or clamped."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("tracker", "0003_calendar_tokens")], [("tracker", "0004_bounds")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    organisation = old.get_model("tracker", "Organisation").objects.create(slug="o", name="O")
    inspection = old.get_model("tracker", "Inspection").objects.create(
        organisation=organisation, slug="i", inspectorate="hmicfrs", programme="p", title="t"
    )
    finding = old.get_model("tracker", "Finding").objects.create(
        inspection=inspection, reference="R1", kind="concern", title="t", summary="s", quote="q", source_title="s"
    )
    rec = old.get_model("tracker", "Recommendation").objects.create(
        finding=finding, title="t", review_interval_days=999_999_999, next_review_due="2027-01-01"
    )
    try:
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match=rf"recommendation {rec.pk}: review interval is over 366 days"):
            executor.migrate(after)
        assert old.get_model("tracker", "Recommendation").objects.get(pk=rec.pk).review_interval_days == 999_999_999
        old.get_model("tracker", "Recommendation").objects.filter(pk=rec.pk).update(review_interval_days=28)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
