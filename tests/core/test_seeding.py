"""seed_findings: idempotent, never overwrites staff work, all-or-nothing, clear messages."""

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tests.factories import OrganisationFactory, UserFactory
from tracker import workflow
from tracker.models import Finding, Inspection, Judgement, Organisation, Recommendation, RecommendationEvent, Theme
from tracker.permissions import Role
from tracker.seeding import SEED_CHANGE_REASON, SeedError, seed

SEEDS = Path(settings.BASE_DIR) / "seeds"
CLEVELAND_2025 = SEEDS / "cleveland-police-2025-national-child-protection.yaml"

VALID = """\
organisation: {slug: test-force, name: Test Force, kind: police_force}
inspection:
  slug: test-2025
  inspectorate: hmicfrs
  programme: National child protection inspection
  title: Test inspection
  published: 2025-01-22
sources:
  - {key: report, title: The report}
themes:
  missing-children: Missing children
judgements:
  - {area: Responding to children at risk of harm, grade: inadequate}
findings:
  - reference: CC1
    kind: cause_of_concern
    title: Respond to missing children
    summary: The force does not respond to missing children effectively.
    quote: doesn’t consistently recognise the risks posed to missing children
    source: report
    location: paragraph 9
    themes: [missing-children]
"""


def counts():
    return tuple(m.objects.count() for m in (Organisation, Inspection, Judgement, Finding, Recommendation))


def write(tmp_path, text, name="seed.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def seeded(db):
    seed()


class TestTheClevelandSeed:
    def test_every_finding_of_the_2025_inspection_but_its_strengths_becomes_a_recommendation(self, seeded):
        inspection = Inspection.objects.get(slug="cleveland-police-2025-ncpi")
        findings = inspection.findings.all()
        assert findings.count() == 22
        tracked = findings.exclude(kind=Finding.Kind.STRENGTH)
        assert tracked.count() == 19
        assert set(
            Recommendation.objects.filter(finding__inspection=inspection).values_list("finding", flat=True)
        ) == set(tracked.values_list("pk", flat=True))
        assert set(findings.values_list("kind", flat=True)) == {
            "graded_judgement",
            "cause_of_concern",
            "concern",
            "strength",
        }
        assert sorted(inspection.judgements.values_list("grade", flat=True)) == [
            "adequate",
            "inadequate",
            "inadequate",
            "requires_improvement",
            "requires_improvement",
        ]
        for finding in findings:
            assert finding.quotations.exists() and finding.themes.exists(), finding.reference
            assert finding.quote, f"{finding.reference} has no words quoted"

    def test_the_2025_inspection_is_seeded_with_its_publication_date(self, seeded):
        assert Inspection.objects.get(slug="cleveland-police-2025-ncpi").published == dt.date(2025, 1, 15)

    def test_new_recommendations_are_not_started_with_a_review_date(self, seeded):
        for rec in Recommendation.objects.all():
            assert rec.status == Recommendation.Status.NOT_STARTED
            assert rec.next_review_due > dt.date(2025, 1, 1)
            assert rec.events.filter(action=RecommendationEvent.Action.CREATED).exists()

    def test_historical_inspections_give_findings_but_no_recommendations(self, seeded):
        historical = Inspection.objects.filter(tracked=False)
        assert historical.count() == 3
        assert Finding.objects.filter(inspection__in=historical).exists()
        assert not Recommendation.objects.filter(finding__inspection__in=historical).exists()

    def test_missing_children_is_followed_across_2017_2018_and_2025(self, seeded):
        years = Inspection.objects.filter(findings__themes__slug="missing-children").distinct()
        assert years.count() == 3

    def test_the_workforce_theme_spans_the_2018_joint_inspection_and_2025(self, seeded):
        joint = Inspection.objects.get(slug="stockton-on-tees-2018-jtai")
        assert joint.inspectorate == Inspection.Inspectorate.JOINT
        assert joint.joint_inspectorates == "Ofsted, CQC, HMICFRS, HMI Probation"
        slugs = set(
            Inspection.objects.filter(findings__themes__slug="workforce-and-training")
            .distinct()
            .values_list("slug", flat=True)
        )
        assert slugs == {"stockton-on-tees-2018-jtai", "cleveland-police-2025-ncpi"}

    def test_the_findings_the_audit_found_missing_are_seeded_in_the_inspectorates_words(self, seeded):
        """Issue 14: the 2025 report's voice of the child, information sharing and operational joint
        working; strengths in 2017, 2018 and 2025; the 2018 joint inspection's staffing recommendation."""
        wanted = {
            ("cleveland-police-2025-ncpi", "consistently record the voice of the child"): "The inspectorate's words",
            (
                "cleveland-police-2025-ncpi",
                "effectively shares relevant information with its safeguarding partners",
            ): "The inspectorate's words",
            (
                "cleveland-police-2025-ncpi",
                "at an operational level, improvements are needed. Especially to the force's joint working",
            ): "The inspectorate's words",
            (
                "stockton-on-tees-2018-jtai",
                "staffing levels in the protecting vulnerable people support team",
            ): "As reported by",
        }
        for (slug, words), label in wanted.items():
            findings = Finding.objects.filter(inspection__slug=slug, quotations__text__contains=words).distinct()
            assert findings.count() == 1, words
            quotation = findings.get().quotations.get(text__contains=words)
            assert quotation.label.startswith(label), (words, quotation.label)
        strengths = Finding.objects.filter(kind=Finding.Kind.STRENGTH)
        assert set(strengths.values_list("inspection__slug", flat=True)) == {
            "cleveland-police-2017-ncpi",
            "cleveland-police-2018-post-inspection-review",
            "cleveland-police-2025-ncpi",
        }
        assert not Recommendation.objects.filter(finding__in=strengths).exists()


class TestIdempotence:
    def test_seeding_twice_changes_nothing_and_says_so(self, seeded, capsys):
        before = counts()
        history = Recommendation.history.count()

        call_command("seed_findings")

        assert counts() == before
        assert Recommendation.history.count() == history
        assert "Nothing to change" in capsys.readouterr().out

    def test_staff_edits_survive_a_reseed(self, seeded):
        org = Organisation.objects.get(slug="cleveland-police")
        lead = UserFactory(organisation=org, roles=[Role.GOVERNANCE_LEAD])
        owner = UserFactory(organisation=org, roles=[Role.OWNER])
        rec = Recommendation.objects.with_related().get(finding__reference="CC1", finding__inspection__tracked=True)
        workflow.assign_owner(rec, by=lead, owner=owner)
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 3, 31))
        workflow.post_update(rec, by=owner, narrative="Started", rag="red", review_completed=True)
        workflow.add_evidence(rec, by=owner, kind="note", category="outcome", description="Audit", note="n=20")
        rec.refresh_from_db()
        snapshot = (rec.owner_id, rec.status, rec.rag, rec.target_date, rec.next_review_due, rec.title, rec.version)

        seed()

        rec.refresh_from_db()
        assert (
            rec.owner_id,
            rec.status,
            rec.rag,
            rec.target_date,
            rec.next_review_due,
            rec.title,
            rec.version,
        ) == snapshot
        assert rec.updates.count() == 1
        assert rec.evidence.count() == 1

    def test_a_changed_quote_updates_the_finding_and_is_recorded_in_history(self, tmp_path, db):
        path = write(tmp_path, VALID)
        seed([path])
        write(tmp_path, VALID.replace("consistently recognise", "always recognise"))

        report = seed([path])

        finding = Finding.objects.get(reference="CC1")
        assert "always recognise" in finding.quote
        assert report.updated == ["finding test-2025 CC1 quotation 1: text"]
        assert finding.quotations.get().history.first().history_change_reason == SEED_CHANGE_REASON

    def test_a_dry_run_prints_what_would_change_and_changes_nothing(self, tmp_path, db, capsys):
        call_command("seed_findings", str(write(tmp_path, VALID)), "--dry-run")
        out = capsys.readouterr().out
        assert "Would create recommendation test-2025 CC1" in out
        assert counts() == (0, 0, 0, 0, 0)


TITLE_LIMIT = Finding._meta.get_field("title").max_length
THEME_SLUG_LIMIT = Theme._meta.get_field("slug").max_length

# (what is wrong, the file, the place as "file:line where, field", the message)
MALFORMED = [
    ("bad YAML", VALID.replace("kind: cause_of_concern", "kind: [unclosed"), "b.yaml:17:", "not valid YAML"),
    (
        "a missing field",
        VALID.replace("    summary: The force does not respond to missing children effectively.\n", ""),
        "b.yaml:15 finding CC1:",
        "missing field 'summary'",
    ),
    (
        "an unknown kind",
        VALID.replace("kind: cause_of_concern", "kind: cause"),
        "b.yaml:16 finding CC1, field 'kind':",
        "unknown kind 'cause'",
    ),
    (
        "a duplicate reference",
        VALID + VALID[VALID.index("  - reference: CC1") :],
        "b.yaml:23 finding CC1, field 'reference':",
        "duplicate reference CC1 in 'test-2025' (also on line 15)",
    ),
    (
        "a bad date",
        VALID.replace("published: 2025-01-22", "published: 2025-13-45"),
        "b.yaml:7 inspection, field 'published':",
        "must be a date",
    ),
    (
        "an unknown theme",
        VALID.replace("themes: [missing-children]", "themes: [missing]"),
        "b.yaml:22 finding CC1, field 'themes':",
        "unknown theme 'missing'",
    ),
    (
        "an unknown field",
        VALID.replace("    location: paragraph 9\n", "    location: paragraph 9\n    colour: red\n"),
        "b.yaml:15 finding CC1:",
        "unknown field 'colour'",
    ),
    (
        "an unknown grade",
        VALID.replace("grade: inadequate", "grade: poor"),
        "b.yaml:13 judgement, field 'grade':",
        "unknown grade 'poor'",
    ),
    (
        "a list where a source key is expected",
        VALID.replace("    source: report", "    source: [report]"),
        "b.yaml:20 finding CC1, field 'source':",
        "must be the key of one of the file's sources, not a list",
    ),
    (
        "a mapping where a theme slug is expected",
        VALID.replace("themes: [missing-children]", "themes: [{a: b}]"),
        "b.yaml:22 finding CC1, field 'themes':",
        "each theme must be a theme slug, not a mapping",
    ),
    (
        "a numeric source title",
        VALID.replace("{key: report, title: The report}", "{key: report, title: 2025}"),
        "b.yaml:9 source report, field 'title':",
        "must be text, not a number",
    ),
    (
        "a judgement quoting an undeclared source",
        VALID.replace("grade: inadequate}", "grade: inadequate, source: hearsay}"),
        "b.yaml:13 judgement, field 'source':",
        "unknown source 'hearsay' (declared: report)",
    ),
    (
        "a list used as a key",
        VALID.replace("  missing-children: Missing children", "  [a]: Missing children"),
        "b.yaml:11:",
        "not valid YAML: a key must be a plain word",
    ),
    (
        "a title longer than the model allows",
        VALID.replace("title: Respond to missing children", "title: " + "x" * (TITLE_LIMIT + 1)),
        "b.yaml:17 finding CC1, field 'title':",
        f"is {TITLE_LIMIT + 1:,} characters long; the limit is {TITLE_LIMIT:,}",
    ),
    (
        "a theme slug longer than the model allows",
        VALID.replace("missing-children", "m" * (THEME_SLUG_LIMIT + 1)),
        f"b.yaml:11 theme {'m' * (THEME_SLUG_LIMIT + 1)}, field 'slug':",
        f"is {THEME_SLUG_LIMIT + 1} characters long; the limit is {THEME_SLUG_LIMIT}",
    ),
]


class TestMalformedFiles:
    @pytest.mark.parametrize(("problem", "text", "place", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
    def test_a_malformed_file_names_the_file_the_place_and_the_problem_and_changes_nothing(
        self, tmp_path, db, problem, text, place, message
    ):
        good = write(tmp_path, VALID.replace("test-force", "good-force").replace("test-2025", "good-2025"), "a.yaml")
        bad = write(tmp_path, text, "b.yaml")

        with pytest.raises(CommandError) as error:
            call_command("seed_findings", str(good), str(bad))

        text = str(error.value)
        assert "Nothing was loaded" in text
        assert f"{place} {message}" in text
        assert "Traceback" not in text
        assert counts() == (0, 0, 0, 0, 0), "the good file must not be loaded either"

    def test_a_file_that_is_not_utf8_is_refused(self, tmp_path, db):
        path = tmp_path / "latin.yaml"
        path.write_bytes(VALID.replace("doesn’t", "doesn\x92t").encode("latin-1", errors="replace"))
        with pytest.raises(SeedError, match=r"latin\.yaml: the file is not UTF-8 text"):
            seed([path])

    def test_the_command_prints_no_traceback(self, tmp_path, db):
        shutil.copy(CLEVELAND_2025, tmp_path / "copy.yaml")
        bad = write(tmp_path, VALID.replace("kind: cause_of_concern", "kind: cause"))
        with pytest.raises(CommandError) as error:
            call_command("seed_findings", str(bad))
        assert "Traceback" not in str(error.value)

    def test_an_organisation_name_already_used_under_another_slug_is_reported_not_a_database_error(self, tmp_path, db):
        OrganisationFactory(slug="elsewhere", name="Test Force")

        with pytest.raises(CommandError) as error:
            call_command("seed_findings", str(write(tmp_path, VALID, "b.yaml")))

        assert (
            "b.yaml:1 organisation, field 'name': 'Test Force' is already the name of organisation 'elsewhere'"
            in str(error.value)
        )
        assert counts() == (1, 0, 0, 0, 0)

    def test_two_files_giving_one_organisation_different_names_or_one_name_two_slugs_are_refused(self, tmp_path, db):
        renamed = VALID.replace("name: Test Force", "name: Test Police").replace("test-2025", "other-2025")
        with pytest.raises(SeedError, match=r"b\.yaml:1 organisation, field 'name': differs from .*a\.yaml"):
            seed([write(tmp_path, VALID, "a.yaml"), write(tmp_path, renamed, "b.yaml")])
        other_slug = VALID.replace("slug: test-force", "slug: test-police").replace("test-2025", "other-2025")
        with pytest.raises(SeedError, match=r"b\.yaml:1 organisation, field 'name': 'Test Force' is also the name"):
            seed([write(tmp_path, VALID, "a.yaml"), write(tmp_path, other_slug, "b.yaml")])
        assert counts() == (0, 0, 0, 0, 0)

    def test_a_value_of_the_wrong_type_anywhere_is_reported_never_a_crash(self, tmp_path, db):
        """Every value of the file, in turn, replaced by a list, a mapping, a number, null, a boolean, a date."""
        values = list(re.finditer(r"(?<=[{\s])(\w+): ([^,{}\n]+)", VALID))
        assert len(values) >= 20
        path = tmp_path / "b.yaml"
        for match in values:
            for odd in ("[a, b]", "{a: b}", "12", "null", "true", "2025-01-01", "''"):
                path.write_text(VALID[: match.start(2)] + odd + VALID[match.end(2) :], encoding="utf-8")
                try:
                    seed([path], dry_run=True)
                except SeedError as exc:
                    assert re.match(r"\S*b\.yaml(:\d+)? ", str(exc)), (match.group(1), odd, str(exc))
        assert counts() == (0, 0, 0, 0, 0)


class TestInspectionSlugs:
    def test_two_organisations_may_each_seed_an_inspection_with_the_same_slug(self, tmp_path, db):
        other = VALID.replace("test-force", "other-force").replace("Test Force", "Other Force")

        seed([write(tmp_path, VALID, "a.yaml"), write(tmp_path, other, "b.yaml")])
        seed([write(tmp_path, VALID, "a.yaml"), write(tmp_path, other, "b.yaml")])  # and again, unchanged

        inspections = Inspection.objects.filter(slug="test-2025")
        assert sorted(inspections.values_list("organisation__slug", flat=True)) == ["other-force", "test-force"]
        assert Recommendation.objects.count() == 2

    def test_the_same_inspection_of_one_organisation_in_two_files_is_refused(self, tmp_path, db):
        with pytest.raises(SeedError, match=r"b\.yaml:3 inspection, field 'slug': inspection 'test-2025' is also in"):
            seed([write(tmp_path, VALID, "a.yaml"), write(tmp_path, VALID, "b.yaml")])
