"""Every quotation is attributed honestly: its words are in the repository's excerpt of the source it
cites, and only the inspectorate's own report or news release is labelled as the inspectorate's words."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import reverse

from tests.factories import UserFactory
from tracker.models import INSPECTORATE_WORDS, Organisation, Quotation, Recommendation, Source
from tracker.permissions import Role
from tracker.seeding import SeedError, default_paths, seed

SEEDS = Path(settings.BASE_DIR) / "seeds"
INSPECTORATE = {Source.Kind.INSPECTORATE_REPORT, Source.Kind.INSPECTORATE_NEWS_RELEASE}


def _excerpts() -> dict[tuple[str, str], Path]:
    """(inspection slug, source key) -> the excerpt file each seed file names, read from the YAML itself."""
    found = {}
    for path in default_paths():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for source in document["sources"]:
            found[(document["inspection"]["slug"], source["key"])] = Path(settings.BASE_DIR, source["excerpt"])
    return found


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def org(db):
    seed()
    return Organisation.objects.get(slug="cleveland-police")


def test_every_seeded_quotation_appears_verbatim_in_the_excerpt_of_the_source_it_cites(org):
    excerpts = _excerpts()
    quotations = Quotation.objects.select_related("source__inspection", "finding").exclude(text="")
    assert quotations.count() >= 35
    for quotation in quotations:
        excerpt = excerpts[(quotation.source.inspection.slug, quotation.source.key)]
        assert excerpt.is_relative_to(SEEDS / "sources"), excerpt
        assert _words(quotation.text) in _words(excerpt.read_text(encoding="utf-8")), (
            f"{quotation.finding.reference}: {quotation.text!r} is not in {excerpt.name}"
        )


def test_each_excerpt_gives_its_publications_address_and_kind(org):
    excerpts = _excerpts()
    for source in Source.objects.select_related("inspection"):
        text = excerpts[(source.inspection.slug, source.key)].read_text(encoding="utf-8")
        assert f"Kind: {source.get_kind_display().lower()}" in text, source.key
        if source.url:
            assert f"Address: {source.url}" in text, source.key


def test_only_the_inspectorates_own_words_are_labelled_as_theirs(org):
    labels = {}
    for quotation in Quotation.objects.select_related("source").exclude(text=""):
        is_theirs = quotation.label == INSPECTORATE_WORDS
        assert is_theirs == (quotation.source.kind in INSPECTORATE), (quotation.source.key, quotation.label)
        labels[quotation.source.key] = quotation.label
    assert labels["hmicfrs-report"] == "The inspectorate's words"
    assert labels["northern-echo"] == "As reported by The Northern Echo"
    assert labels["pa-news"] == "As reported in the news"
    assert labels["police-professional"] == "As reported by Police Professional"
    assert Source.objects.get(key="yjlc-summary").label == "Summary"


def test_the_inspectorates_words_come_first_where_a_finding_has_them(org):
    for finding_quotations in _by_finding():
        kinds = [q.source.kind in INSPECTORATE for q in finding_quotations if q.text]
        assert kinds == sorted(kinds, reverse=True), finding_quotations[0].finding


def _by_finding():
    grouped = {}
    for quotation in Quotation.objects.select_related("source", "finding").order_by("finding", "position"):
        grouped.setdefault(quotation.finding_id, []).append(quotation)
    return grouped.values()


def test_no_source_shown_to_users_is_an_internal_file_path(org):
    for source in Source.objects.all():
        for value in (source.title, source.publisher, source.url):
            assert "shared/" not in value and ".txt" not in value and "seeds/" not in value
    for path in default_paths():
        assert "shared/seeds" not in path.read_text(encoding="utf-8"), path.name


def test_a_quotation_not_found_in_its_sources_excerpt_is_refused_naming_file_finding_and_field(tmp_path, db):
    text = (SEEDS / "cleveland-police-2025-national-child-protection.yaml").read_text(encoding="utf-8")
    genuine = (
        'Nor does it respond to them effectively."\n        location: "HM Inspector\'s summary, cause of concern 1"'
    )
    assert text.count(genuine) == 1
    path = tmp_path / "invented.yaml"
    path.write_text(text.replace(genuine, genuine.replace("effectively", "at all")), encoding="utf-8")

    with pytest.raises(SeedError) as refused:
        seed([path])

    message = str(refused.value)
    assert "invented.yaml:" in message and "finding CC1, field 'text':" in message
    assert "not in seeds/sources/2025-hmicfrs-report.md" in message
    assert not Quotation.objects.exists()


def test_pages_api_and_exports_label_each_quotation_by_its_source(client, org):
    rita = UserFactory(organisation=org, roles=[Role.REVIEWER])
    client.force_login(rita)
    cc2 = Recommendation.objects.get(finding__reference="CC2", finding__inspection__slug="cleveland-police-2025-ncpi")

    html = client.get(cc2.get_absolute_url()).content.decode()
    report = html.index("The inspectorate&#x27;s words")
    echo = html.index("As reported by The Northern Echo")
    assert report < html.index("the force needs to improve how it investigates cases involving children") < echo
    assert echo < html.index("the need for improvement in investigating cases involving online sexual exploitation")
    assert "shared/seeds" not in html

    finding = client.get(reverse("api:finding-detail", args=[cc2.finding_id])).json()
    assert finding["quote_label"] == "The inspectorate's words"
    assert [q["label"] for q in finding["quotations"]] == [
        "The inspectorate's words",
        "The inspectorate's words",
        "As reported by The Northern Echo",
    ]
    assert finding["quotations"][0]["source"]["kind"] == "inspectorate_report"

    body = b"".join(client.get(reverse("tracker:export-csv")).streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    by_reference = {row["Reference"]: row for row in rows}
    assert by_reference["CC2"]["Quoted as"] == "The inspectorate's words"
    assert by_reference["CC2"]["Source kind"] == "Inspectorate report"
    assert by_reference["OBS8"]["Quoted as"] == "As reported in the news"
    assert "Inspectorate's words" not in rows[0]


NEW_FORMAT = """\
organisation: {slug: test-force, name: Test Force, kind: police_force}
inspection: {slug: test-2025, inspectorate: hmicfrs, programme: P, title: T}
sources:
  - {key: report, kind: inspectorate_report, title: The report, publisher: HMICFRS}
themes: {missing-children: Missing children}
findings:
  - reference: CC1
    kind: cause_of_concern
    title: Respond to missing children
    summary: Slow.
    quotes:
      - {source: report, text: children were not found quickly, location: page 4}
      - {source: paper, text: slow, location: paragraph 2}
    themes: [missing-children]
"""


def test_a_quotation_citing_an_undeclared_source_is_refused_with_its_place(tmp_path, db):
    path = tmp_path / "new.yaml"
    path.write_text(NEW_FORMAT, encoding="utf-8")
    with pytest.raises(SeedError, match=r"new\.yaml:13 finding CC1, field 'source': unknown source 'paper'"):
        seed([path])
    path.write_text(NEW_FORMAT.replace("      - {source: paper, text: slow, location: paragraph 2}\n", ""))
    seed([path])
    assert Quotation.objects.get().label == INSPECTORATE_WORDS  # no excerpt declared: nothing to check against


def test_an_import_refuses_a_strength_which_is_shown_not_tracked(org, lead):
    from tests.oversight.test_imports import csv_bytes, good_row
    from tracker import imports

    with pytest.raises(imports.ImportFailed) as refused:
        imports.import_recommendations(csv_bytes([good_row(Kind="Strength")]), by=lead)
    assert "row 2, column Kind: a strength is shown, not tracked" in str(refused.value)


def test_an_older_export_with_inspectorates_words_imports_as_a_summary_unless_the_kind_is_given(org, lead, olly):
    from tests.oversight.test_imports import HEADERS, csv_bytes, good_row
    from tracker import imports

    old_headers = [("Inspectorate's words" if h == "Quotation" else h) for h in HEADERS if h != "Source kind"]
    row = [value for header, value in zip(HEADERS, good_row(), strict=True) if header != "Source kind"]
    imports.import_recommendations(csv_bytes([row], header=old_headers), by=lead)

    quotation = Quotation.objects.get(finding__inspection__slug="acme-police-2026-ncpi")
    assert (quotation.text, quotation.label) == ("children were not found quickly", "Summary")
    assert quotation.source.kind == Source.Kind.THIRD_PARTY_SUMMARY
