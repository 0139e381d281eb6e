"""A seeded recommendation's first event says which publication it was seeded from, never the seed
file's path: for new seeds, and (migration 0014) for databases seeded before."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tracker.models import Recommendation, RecommendationEvent
from tracker.seeding import seed

MIGRATION = ("tracker", "0014_seed_reasons")
REASON_2025 = "Seeded from HMICFRS, National child protection inspection of Cleveland Police (2025), 15 January 2025"


def test_seeding_names_the_publication_not_the_seed_file(db, client):
    seed()
    created = RecommendationEvent.objects.filter(action=RecommendationEvent.Action.CREATED)
    assert created.count() == Recommendation.objects.count() > 0
    assert set(created.values_list("reason", flat=True)) == {REASON_2025}


@pytest.mark.django_db(transaction=True)
def test_the_migration_words_old_seed_reasons_by_publication_and_keeps_every_other_event():
    executor = MigrationExecutor(connection)
    before = [key for key in executor.loader.get_migration(*MIGRATION).dependencies if key[0] == "tracker"]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    organisation = old.get_model("tracker", "Organisation").objects.create(slug="o", name="O", kind="police_force")
    Inspection = old.get_model("tracker", "Inspection")
    hmicfrs = Inspection.objects.create(
        organisation=organisation,
        slug="a",
        inspectorate="hmicfrs",
        programme="p",
        title="The report",
        published=dt.date(2025, 1, 15),
    )
    joint = Inspection.objects.create(
        organisation=organisation,
        slug="b",
        inspectorate="joint",
        joint_inspectorates="Ofsted, CQC",
        programme="p",
        title="The joint report",
        published_text="January 2018",
    )
    Finding = old.get_model("tracker", "Finding")
    Rec = old.get_model("tracker", "Recommendation")
    Event = old.get_model("tracker", "RecommendationEvent")
    events = {}
    for reference, inspection, action, reason in (
        ("F1", hmicfrs, "created", "Seeded from seeds/cleveland-police-2025.yaml"),
        ("F2", joint, "created", "Seeded from /tmp/x/other.yml"),
        ("F3", hmicfrs, "created", "Seeded from a conversation with the inspector"),  # a person's words
        ("F4", hmicfrs, "rejected", "Seeded from seeds/x.yaml"),  # not a creation
    ):
        finding = Finding.objects.create(inspection=inspection, reference=reference, kind="concern", title="t")
        rec = Rec.objects.create(
            finding=finding,
            organisation=organisation,
            title="t",
            review_interval_days=30,
            next_review_due=dt.date(2025, 3, 1),
        )
        events[reference] = Event.objects.create(recommendation=rec, action=action, reason=reason).pk
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([MIGRATION])
        Event = executor.loader.project_state([MIGRATION]).apps.get_model("tracker", "RecommendationEvent")
        reasons = {reference: Event.objects.get(pk=pk).reason for reference, pk in events.items()}
        assert reasons == {
            "F1": "Seeded from HMICFRS, The report, 15 January 2025",
            "F2": "Seeded from Ofsted, CQC, The joint report, January 2018",
            "F3": "Seeded from a conversation with the inspector",
            "F4": "Seeded from seeds/x.yaml",
        }
        assert Event.objects.count() == 4
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


INTERNAL = ("seeds/", "shared/", ".yaml", ".yml", "000_")


def test_no_page_api_answer_or_export_of_a_seeded_database_shows_an_internal_path(db, client):
    from django.urls import reverse

    from tests.factories import UserFactory
    from tracker.models import Inspection
    from tracker.permissions import Role

    seed()
    lead = UserFactory(organisation=Inspection.objects.first().organisation, roles=[Role.GOVERNANCE_LEAD])
    client.force_login(lead)
    urls = ["/", reverse("tracker:recommendations"), reverse("tracker:dashboard")]
    for inspection in Inspection.objects.all():
        urls += [inspection.get_absolute_url(), reverse("tracker:board-pack", args=[inspection.pk])]
    urls += [rec.get_absolute_url() for rec in Recommendation.objects.all()]
    urls += ["/api/findings/", "/api/inspections/", "/api/recommendations/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert not [word for word in INTERNAL if word in body], url
    rec = Recommendation.objects.get(finding__reference="CC1", finding__inspection__slug="cleveland-police-2025-ncpi")
    assert REASON_2025 in client.get(rec.get_absolute_url()).content.decode()
    export = b"".join(client.get(reverse("tracker:export-csv")).streaming_content).decode("utf-8-sig")
    assert not [word for word in INTERNAL if word in export]
