"""Migration 0008 turns each finding's old quote and source into a Source of its inspection and its
first Quotation, claiming nobody's words as the inspectorate's, and keeps no internal file path."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

MIGRATION = ("tracker", "0008_sources")


@pytest.mark.django_db(transaction=True)
def test_old_quotes_become_quotations_of_third_party_summaries_with_web_addresses_kept():
    executor = MigrationExecutor(connection)
    before = [key for key in executor.loader.get_migration(*MIGRATION).dependencies if key[0] == "tracker"]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    organisation = old.get_model("tracker", "Organisation").objects.create(slug="o", name="O")
    inspection = old.get_model("tracker", "Inspection").objects.create(
        organisation=organisation, slug="i", inspectorate="hmicfrs", programme="p", title="t"
    )
    Finding = old.get_model("tracker", "Finding")
    common = {"inspection": inspection, "kind": "concern", "title": "t", "summary": "s"}
    Finding.objects.create(
        reference="R1", quote="words one", source_title="A paper", source_reference="shared/seeds/000_x.txt",
        source_location="paragraph 2", **common,
    )  # fmt: skip
    Finding.objects.create(reference="R2", quote="words two", source_title="A paper", **common)
    Finding.objects.create(
        reference="R3", quote="words three", source_title="The report", source_reference="https://example.org/r",
        **common,
    )  # fmt: skip
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([MIGRATION])
        new = executor.loader.project_state([MIGRATION]).apps
        Quotation = new.get_model("tracker", "Quotation")
        rows = sorted(
            Quotation.objects.values_list(
                "finding__reference", "position", "text", "location", "source__title", "source__kind", "source__url"
            )
        )
        assert rows == [
            ("R1", 1, "words one", "paragraph 2", "A paper", "third_party_summary", ""),
            ("R2", 1, "words two", "", "A paper", "third_party_summary", ""),
            ("R3", 1, "words three", "", "The report", "third_party_summary", "https://example.org/r"),
        ]
        assert new.get_model("tracker", "Source").objects.count() == 2  # one per title within the inspection
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
