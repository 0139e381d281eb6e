"""Re-seeding a database loaded from the seed files as they were before sources were publications.

Changed quotes and sources update with history; new findings arrive with new recommendations (strengths
without); nothing a person entered changes; findings the files no longer give are reported, not
deleted; and a dry run lists exactly what the real run then does, writing nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import UserFactory
from tracker import workflow
from tracker.models import (
    Finding,
    Inspection,
    Judgement,
    Organisation,
    Quotation,
    Recommendation,
    Source,
)
from tracker.permissions import Role
from tracker.seeding import SEED_CHANGE_REASON, default_paths, seed

BEFORE = sorted((Path(__file__).parent / "seed_fixtures" / "before-sources").glob("*.yaml"))
TRACKED = "cleveland-police-2025-ncpi"


def everything() -> tuple:
    """Every row the seed writes, and every history row, as counts."""
    models = (Organisation, Inspection, Judgement, Source, Finding, Quotation, Recommendation)
    return tuple(m.objects.count() for m in models) + tuple(m.history.count() for m in models)


def staff_state(rec: Recommendation) -> tuple:
    rec.refresh_from_db()
    return (
        rec.owner_id,
        rec.status,
        rec.rag,
        rec.target_date,
        rec.next_review_due,
        rec.title,
        rec.outcome_measure,
        rec.version,
        rec.updates.count(),
        rec.evidence.count(),
    )


@pytest.fixture
def old_database(db):
    """The old files loaded, and a governance lead's and an owner's work on CC1."""
    assert len(BEFORE) == 3
    seed(BEFORE)
    org = Organisation.objects.get(slug="cleveland-police")
    lead = UserFactory(organisation=org, roles=[Role.GOVERNANCE_LEAD])
    owner = UserFactory(organisation=org, roles=[Role.OWNER])
    rec = Recommendation.objects.get(finding__reference="CC1", finding__inspection__slug=TRACKED)
    workflow.assign_owner(rec, by=lead, owner=owner)
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 3, 31))
    workflow.post_update(rec, by=owner, narrative="Audit started", rag="red", review_completed=True)
    workflow.add_evidence(rec, by=owner, kind="note", category="outcome", description="Audit", note="n=20")
    inspection = Inspection.objects.get(slug=TRACKED)
    Inspection.objects.filter(pk=inspection.pk).update(action_plan_due=dt.date(2025, 3, 31))
    return rec


def test_the_old_files_give_journalists_words_as_a_third_party_summary_not_as_the_inspectorates(old_database):
    quotation = Quotation.objects.get(finding=old_database.finding)
    assert quotation.source.kind == Source.Kind.THIRD_PARTY_SUMMARY
    assert quotation.label == "Summary"


def test_a_dry_run_lists_exactly_what_the_real_run_changes_and_writes_nothing(old_database, capsys):
    before = everything()

    call_command("seed_findings", "--dry-run")
    dry = capsys.readouterr().out.splitlines()

    assert everything() == before
    call_command("seed_findings")
    real = capsys.readouterr().out.splitlines()

    def changes(lines, verb):
        return [line.removeprefix(verb + " ") for line in lines if line.startswith(verb + " ")]

    assert changes(dry, "Would create") == changes(real, "Created")
    assert changes(dry, "Would update") == changes(real, "Updated")
    assert len(changes(real, "Created")) > 20 and len(changes(real, "Updated")) > 20
    assert "finding cleveland-police-2025-ncpi CC1 quotation 1: source, text, location" in changes(real, "Updated")


def test_reseeding_updates_quotes_and_sources_with_history_and_keeps_what_people_entered(old_database):
    rec = old_database
    kept = staff_state(rec)
    plan_due = Inspection.objects.get(slug=TRACKED).action_plan_due
    old_recommendations = set(Recommendation.objects.values_list("pk", flat=True))

    report = seed()

    assert staff_state(rec) == kept
    assert Inspection.objects.get(slug=TRACKED).action_plan_due == plan_due
    quotation = Quotation.objects.get(finding=rec.finding, position=1)
    assert quotation.text.startswith("The force doesn't consistently recognise")
    assert quotation.source.key == "hmicfrs-report" and quotation.label == "The inspectorate's words"
    assert quotation.history.first().history_change_reason == SEED_CHANGE_REASON
    assert quotation.history.count() == 2  # as migrated or first seeded, then as corrected
    echo = Source.objects.get(inspection__slug=TRACKED, key="northern-echo")
    assert (echo.kind, echo.publisher) == (Source.Kind.NEWSPAPER_REPORT, "The Northern Echo")
    assert echo.history.first().history_change_reason == SEED_CHANGE_REASON

    # New findings arrive with recommendations; strengths without; the old ones keep theirs.
    assert old_recommendations < set(Recommendation.objects.values_list("pk", flat=True))
    new = Recommendation.objects.filter(finding__inspection__slug=TRACKED).exclude(pk__in=old_recommendations)
    assert sorted(new.values_list("finding__reference", flat=True)) == ["GJ3", "GJ4", "OBS10", "OBS11", "OBS9"]
    strengths = Finding.objects.filter(kind=Finding.Kind.STRENGTH)
    assert strengths.count() == 8
    assert not Recommendation.objects.filter(finding__in=strengths).exists()
    assert report.notes == []

    assert not seed().changed  # and again: nothing


def test_a_finding_the_files_no_longer_give_is_reported_and_kept(old_database, tmp_path):
    text = (Path(default_paths()[-1])).read_text(encoding="utf-8")
    assert default_paths()[-1].name == "cleveland-police-2025-national-child-protection.yaml"
    start = text.index("  - reference: CS2\n")
    end = text.index("  - reference: ST1\n")
    trimmed = tmp_path / "cleveland-police-2025-national-child-protection.yaml"
    trimmed.write_text(text[:start] + text[end:], encoding="utf-8")
    paths = [*default_paths()[:-1], trimmed]

    report = seed(paths)

    assert any(
        "finding CS2 is in the database but no longer in the file; it was left as it is" in n for n in report.notes
    )
    assert Recommendation.objects.filter(finding__reference="CS2", finding__inspection__slug=TRACKED).exists()
