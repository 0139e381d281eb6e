"""Imports: export then import gives the same recommendations; a bad file is refused whole, row by row."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import tracemalloc
import zipfile

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.urls import reverse
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from tests.factories import InspectionFactory, UserFactory
from tests.oversight.conftest import content, fetch
from tracker import imports, workflow
from tracker.exports import COLUMNS
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    AccessLog,
    Finding,
    Inspection,
    Recommendation,
    RecommendationEvent,
    Reminder,
    User,
)
from tracker.permissions import Role

pytestmark = pytest.mark.django_db

HEADERS = [c.header for c in COLUMNS if c.importable]
NEW_SLUG = "acme-police-2026-ncpi"


def snapshot(inspection: Inspection) -> list[tuple]:
    recs = Recommendation.objects.filter(finding__inspection=inspection).select_related("finding", "owner")
    return sorted(
        (
            r.finding.reference,
            r.title,
            r.finding.kind,
            r.finding.summary,
            r.finding.quote,
            r.owner.username if r.owner else None,
            r.target_date,
            r.review_interval_days,
            r.outcome_measure,
            tuple(sorted(r.finding.themes.values_list("slug", flat=True))),
        )
        for r in recs
    )


def history_counts() -> tuple[int, ...]:
    return tuple(m.history.count() for m in (Inspection, Finding, Recommendation))


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Inspection, Finding, Recommendation, RecommendationEvent, AccessLog))


@pytest.fixture
def planned(cleveland, lead, olly, otto):
    """The seeded 2025 recommendations with owners, target dates, an interval and awkward text."""
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    workflow.assign_owner(recs["CC1"], by=lead, owner=olly)
    workflow.assign_owner(recs["CC2"], by=lead, owner=otto)
    workflow.change_target_date(recs["CC1"], by=lead, target_date=dt.date(2026, 6, 30))
    workflow.change_target_date(recs["OBS2"], by=lead, target_date=dt.date(2026, 12, 1))
    workflow.change_review_interval(recs["OBS3"], by=lead, days=14)
    workflow.edit_details(
        recs["OBS4"], by=lead, title="=Formula-looking title", outcome_measure="- fewer repeat episodes"
    )
    return cleveland


def csv_bytes(rows: list[list[object]], header: list[str] | None = None, encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header or HEADERS)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def good_row(**changes) -> list[object]:
    values = {
        "Inspection slug": NEW_SLUG,
        "Inspection": "National child protection inspection of Acme Police (2026)",
        "Inspectorate": "HMICFRS",
        "Programme": "National child protection inspection",
        "Published": "March 2026",
        "Reference": "CC1",
        "Kind": "Cause of concern",
        "Title": "Respond to missing children",
        "Summary": "The response to missing children was slow.",
        "Quotation": "children were not found quickly",
        "Source": "The inspection report",
        "Source kind": "Inspectorate report",
        "Source location": "page 4",
        "Themes": "missing-children",
        "Owner username": "olly",
        "Target date": "2026-09-30",
        "Review interval (days)": "28",
        "Outcome measure": "Children found faster.",
        "Action plan": "",  # optional columns (issue 16): tests/outcomes/test_imports.py
        "Measure definitions": "",
    }
    values.update(changes)
    return [values[h] for h in HEADERS]


def retitle(sheet_rows: list[list[object]], header: list[str]) -> list[list[object]]:
    """The export, pointed at a new inspection: the only edit a user needs before importing it."""
    slug, title = header.index("Inspection slug"), header.index("Inspection")
    for row in sheet_rows:
        row[slug], row[title] = NEW_SLUG, "Imported copy"
    return sheet_rows


def test_xlsx_export_then_import_gives_the_same_recommendations(client, planned, rita, lead, worker):
    client.force_login(rita)
    response = fetch(client, reverse("tracker:export-xlsx"), {"inspection": planned.pk})  # made by the worker
    book = load_workbook(io.BytesIO(content(response)))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        row[header.index("Inspection slug")].value = NEW_SLUG
        row[header.index("Inspection")].value = "Imported copy"
    buffer = io.BytesIO()
    book.save(buffer)

    report = imports.import_recommendations(buffer.getvalue(), by=lead, filename="plan.xlsx")

    assert report.rows == 19
    copy = Inspection.objects.get(slug=NEW_SLUG)
    assert (copy.organisation_id, copy.title, copy.tracked) == (planned.organisation_id, "Imported copy", True)
    assert snapshot(copy) == snapshot(planned)
    assert ("OBS4", "=Formula-looking title") in [(row[0], row[1]) for row in snapshot(copy)]
    # Made through the workflow: each has its creation, owner and target-date events, by the lead.
    cc1 = Recommendation.objects.get(finding__inspection=copy, finding__reference="CC1")
    assert list(cc1.events.values_list("action", "actor__username")) == [
        ("created", "lead"),
        ("owner_changed", "lead"),
        ("target_date_changed", "lead"),
    ]
    log = AccessLog.objects.get(action=AccessLog.Action.IMPORT)
    assert (log.user, log.detail["rows"], log.detail["filename"]) == (lead, 19, "plan.xlsx")


def test_csv_export_then_import_by_command_gives_the_same_recommendations(client, planned, rita, lead, tmp_path):
    client.force_login(rita)
    response = client.get(reverse("tracker:export-csv"), {"inspection": planned.pk})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    path = tmp_path / "plan.csv"
    path.write_bytes(csv_bytes(retitle(rows, header), header))
    out = io.StringIO()

    call_command("import_recommendations", str(path), "--as", "lead", stdout=out)

    assert "Imported 19 recommendations into acme-police-2026-ncpi." in out.getvalue()
    assert snapshot(Inspection.objects.get(slug=NEW_SLUG)) == snapshot(planned)


def test_a_dry_run_checks_and_changes_nothing(lead, olly):
    before = counts()
    report = imports.import_recommendations(csv_bytes([good_row()]), by=lead, dry_run=True)
    assert report.rows == 1
    assert counts() == before


def _xlsx(rows: list[list[object]], header: list[str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header or HEADERS)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


MALFORMED = {
    "bad date": (
        csv_bytes([good_row(), good_row(Reference="CC2", **{"Target date": "31/02/2026"})]),
        ["row 3, column Target date: '31/02/2026' is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31"],
    ),
    "unknown owner": (
        csv_bytes([good_row(**{"Owner username": "ghost"})]),
        ["row 2, column Owner username: nobody called 'ghost' in your organisation"],
    ),
    "owner in another organisation": (
        csv_bytes([good_row(**{"Owner username": "mallory"})]),
        ["row 2, column Owner username: nobody called 'mallory' in your organisation"],
    ),
    "duplicate reference": (
        csv_bytes([good_row(), good_row(Title="Again")]),
        [f"row 3, column Reference: duplicate reference CC1 in '{NEW_SLUG}' (also on row 2)"],
    ),
    "formula cell in a CSV": (
        csv_bytes([good_row(Title='=HYPERLINK("http://evil")')]),
        ["row 2, column Title: looks like a spreadsheet formula, which is refused; if it is text, start it with '"],
    ),
    "formula cell in Excel": (
        _xlsx([good_row(Summary="=1+1")]),
        ["row 2, column Summary: looks like a spreadsheet formula, which is refused; if it is text, start it with '"],
    ),
    "wrong encoding": (
        csv_bytes([good_row(), good_row(Reference="CC2", Title="Café culture")], encoding="cp1252"),
        ["row 3: the file is not UTF-8 text. In Excel, save it as 'CSV UTF-8' and try again."],
    ),
    "missing columns": (
        csv_bytes([good_row()[1:]], header=HEADERS[1:]),
        ["row 1, column Inspection slug: missing column"],
    ),
    "unknown column": (
        csv_bytes([[*good_row(), "x"]], header=[*HEADERS, "Colour"]),
        ["row 1, column Colour: unknown column (use the headings of an export)"],
    ),
    "existing inspection": (
        csv_bytes([good_row(**{"Inspection slug": "cleveland-police-2017-ncpi"})]),
        [
            "row 2, column Inspection slug: inspection 'cleveland-police-2017-ncpi' already exists; "
            "an import only creates new inspections"
        ],
    ),
    "unknown kind and theme, empty title": (
        csv_bytes([good_row(Kind="Whim", Themes="missing-children; weather", Title="")]),
        [
            "row 2, column Themes: unknown theme 'weather'",
            "row 2, column Kind: unknown kind 'Whim' (expected one of: graded_judgement (Graded judgement),",
            "row 2, column Title: must not be empty",
        ],
    ),
    "not a spreadsheet": (b"PK\x03\x04 this is not a zip", ["file: this is not a readable Excel (.xlsx) file."]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_file_reports_row_errors_and_changes_nothing(case, cleveland, lead, olly, mallory):
    content, expected = MALFORMED[case]
    before = counts()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(content, by=lead, filename="plan.csv")
    found = [str(p) for p in failure.value.problems]
    for message in expected:
        assert any(f.startswith(message) for f in found), (message, found)
    assert counts() == before


def test_every_problem_in_the_file_is_reported_at_once(cleveland, lead, olly):
    content = csv_bytes(
        [
            good_row(),
            good_row(Reference="CC2", **{"Target date": "soon"}),
            good_row(Reference="CC3", **{"Owner username": "ghost", "Review interval (days)": "0"}),
        ]
    )
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(content, by=lead)
    assert [(p.row, p.column) for p in failure.value.problems] == [
        (3, "Target date"),
        (4, "Owner username"),
        (4, "Review interval (days)"),
    ]


def test_a_failure_while_saving_rolls_everything_back(cleveland, lead, olly, monkeypatch):
    # The timeline events are the last rows written: everything before them must go too.
    def fail(*args, **kwargs):
        raise IntegrityError("Someone else changed it.")

    monkeypatch.setattr(RecommendationEvent.objects, "bulk_create", fail)
    before = counts(), history_counts()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([good_row(), good_row(Reference="CC2")]), by=lead)
    assert str(failure.value) == "file: could not be saved: Someone else changed it."
    assert (counts(), history_counts()) == before


def test_an_owner_who_lost_the_role_while_the_file_was_checked_is_refused(lead, olly, otto, monkeypatch):
    """The owners are asked again inside the transaction that writes: someone may have changed since."""
    checked = imports.plan

    def plan_then_someone_deactivates_otto(*args, **kwargs):
        planned = checked(*args, **kwargs)
        User.objects.filter(pk=otto.pk).update(is_active=False)
        return planned

    monkeypatch.setattr(imports, "plan", plan_then_someone_deactivates_otto)
    before = counts()
    rows = [good_row(), good_row(Reference="CC2", **{"Owner username": "otto"})]
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes(rows), by=lead)
    assert [str(p) for p in failure.value.problems] == [
        "row 3, column Owner username: 'otto' cannot own a recommendation: owners are active and have the Owner "
        "or Governance lead role"
    ]
    assert counts() == before


def test_the_workflows_bounds_are_asked_again_for_the_whole_batch_before_writing(lead, olly, monkeypatch):
    """A plan that got past the row checks still meets the workflow's interval and date bounds."""
    checked = imports.plan

    def plan_out_of_bounds(*args, **kwargs):
        planned = checked(*args, **kwargs)
        row = planned[0].recommendations[0]
        row.interval, row.target_date = MAX_REVIEW_INTERVAL_DAYS + 1, workflow.EARLIEST_DATE - dt.timedelta(days=1)
        return planned

    monkeypatch.setattr(imports, "plan", plan_out_of_bounds)
    before = counts()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([good_row()]), by=lead)
    assert [(p.row, p.column) for p in failure.value.problems] == [(2, "Review interval (days)"), (2, "Target date")]
    assert counts() == before


def test_a_bulk_import_gives_what_the_workflow_gives_row_by_row(lead, olly, org):
    """Rows, timeline and history as create_recommendation, assign_owner and change_target_date make them."""
    source = "plan.csv"
    rows = [
        good_row(),
        good_row(Reference="CC2", Themes="", **{"Owner username": "", "Target date": ""}),
        good_row(Reference="CC3", **{"Owner username": "lead", "Target date": "", "Review interval (days)": ""}),
    ]
    imports.import_recommendations(csv_bytes(rows), by=lead, filename=source)

    reason = f"Imported from {source}"
    by_hand = InspectionFactory(organisation=org, slug="by-hand")
    imported = Inspection.objects.get(slug=NEW_SLUG, organisation=org)
    for rec in Recommendation.objects.filter(finding__inspection=imported).select_related("finding", "owner"):
        finding = Finding.objects.create(
            inspection=by_hand,
            **{f: getattr(rec.finding, f) for f in ("reference", "kind", "title", "summary")},
        )
        finding.themes.set(rec.finding.themes.all())
        expected = workflow.create_recommendation(
            finding,
            by=lead,
            interval_days=rec.review_interval_days,
            title=rec.title,
            outcome_measure=rec.outcome_measure,
            reason=reason,
        )
        if rec.owner:
            workflow.assign_owner(expected, by=lead, owner=rec.owner, reason=reason)
        if rec.target_date:
            workflow.change_target_date(expected, by=lead, target_date=rec.target_date, reason=reason)
        expected.refresh_from_db()

        fields = ("organisation_id", "title", "owner_id", "status", "rag", "target_date", "review_interval_days")
        fields += ("next_review_due", "outcome_measure", "superseded_by_id")
        assert [getattr(rec, f) for f in fields] == [getattr(expected, f) for f in fields]
        assert rec.version == 1
        timeline = ("action", "actor_id", "old_value", "new_value", "reason")
        assert list(rec.events.values_list(*timeline)) == list(expected.events.values_list(*timeline))
        # The new owner is told, as assign_owner tells them (nobody is told of their own assignment).
        told = ("recipient_id", "stage", "state", "event__action")
        assert list(Reminder.objects.filter(recommendation=rec).values_list(*told)) == list(
            Reminder.objects.filter(recommendation=expected).values_list(*told)
        )
        # History: present, by the lead, and ending in the row as it stands.
        latest = rec.history.latest()
        assert (latest.history_user, latest.history_change_reason) == (lead, reason)
        assert [getattr(latest, f) for f in fields] == [getattr(rec, f) for f in fields]
        finding_history = rec.finding.history.latest()
        assert finding_history.history_user == lead
        assert sorted(t.theme_id for t in finding_history.themes.all()) == sorted(
            rec.finding.themes.values_list("pk", flat=True)
        )
    assert imported.history.get().history_type == "+"
    by_reference = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=imported)}
    assert (by_reference["CC2"].owner, by_reference["CC2"].target_date) == (None, None)
    assert by_reference["CC3"].review_interval_days == settings.DEFAULT_REVIEW_INTERVAL_DAYS
    assert list(
        Reminder.objects.filter(recommendation__finding__inspection=imported).values_list("recipient", "stage")
    ) == [(olly.pk, Reminder.Stage.ASSIGNED)]


def test_an_exported_neutralising_quote_is_removed_on_import(lead, olly):
    imports.import_recommendations(csv_bytes([good_row(Title="'=SUM(A1)", Summary="'plain quote kept")]), by=lead)
    rec = Recommendation.objects.select_related("finding").get(finding__inspection__slug=NEW_SLUG)
    assert (rec.title, rec.finding.summary) == ("=SUM(A1)", "'plain quote kept")


def test_excel_dates_numbers_and_a_bom_free_csv_are_accepted(lead, olly):
    row = good_row(**{"Target date": dt.datetime(2026, 10, 1), "Review interval (days)": 14})
    imports.import_recommendations(_xlsx([row]), by=lead)
    rec = Recommendation.objects.get(finding__inspection__slug=NEW_SLUG)
    assert (rec.target_date, rec.review_interval_days, rec.owner.username) == (dt.date(2026, 10, 1), 14, "olly")
    other = good_row(**{"Inspection slug": "acme-2027", "Target date": "01/02/2027"})
    imports.import_recommendations(csv_bytes([other], encoding="utf-8"), by=lead)
    assert Recommendation.objects.get(finding__inspection__slug="acme-2027").target_date == dt.date(2027, 2, 1)


def test_only_governance_leads_may_import(rita, vic, olly):
    for user in (rita, vic):
        with pytest.raises(imports.permissions.NotPermitted):
            imports.import_recommendations(csv_bytes([good_row()]), by=user)
    assert not Inspection.objects.filter(slug=NEW_SLUG).exists()


def test_the_command_lists_problems_and_refuses_non_leads(tmp_path, lead, rita, olly):
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes([good_row(**{"Owner username": "ghost"})]))
    with pytest.raises(CommandError, match="row 2, column Owner username: nobody called 'ghost'"):
        call_command("import_recommendations", str(path), "--as", "lead")
    path.write_bytes(csv_bytes([good_row()]))
    with pytest.raises(CommandError, match="Only a governance lead"):
        call_command("import_recommendations", str(path), "--as", "rita")


@pytest.fixture
def groups(db):
    """The real role groups with their model permissions (the admin asks for them)."""
    call_command("loaddata", "groups", verbosity=0)


def test_the_admin_import_page_imports_for_a_lead_and_lists_errors(client, groups, lead, olly, vic, worker):
    """Through the worker (run in this process once the request commits) and the job's page."""
    from django.test import TestCase

    url = reverse("admin:tracker_inspection_import")
    client.force_login(lead)
    assert (
        'href="/admin/tracker/inspection/import/"'
        in client.get(reverse("admin:tracker_inspection_changelist")).content.decode()
    )
    bad = io.BytesIO(csv_bytes([good_row(**{"Target date": "tomorrow"})]))
    bad.name = "bad.csv"
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, {"file": bad})
    response = client.get(response["Location"])
    assert "row 2, column Target date: &#x27;tomorrow&#x27; is not a date" in response.content.decode()
    assert not Inspection.objects.filter(slug=NEW_SLUG).exists()
    good = io.BytesIO(csv_bytes([good_row()]))
    good.name = "good.csv"
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, {"file": good})
    response = client.get(response["Location"])
    assert "1 recommendation into acme-police-2026-ncpi" in response.content.decode()
    assert Recommendation.objects.filter(finding__inspection__slug=NEW_SLUG, owner=olly).count() == 1
    client.force_login(vic)  # staff, but a viewer
    assert client.get(url).status_code == 403


# --- Owners: only those tracker.permissions.eligible_owners allows ----------------------------------


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("vic", "'vic' cannot own a recommendation: owners have the Owner or Governance lead role"),
        ("rita", "'rita' cannot own a recommendation: owners have the Owner or Governance lead role"),
        ("gone", "'gone' is no longer active and cannot own a recommendation"),
        ("mallory", "nobody called 'mallory' in your organisation"),
    ],
)
def test_only_eligible_owners_of_the_organisation_may_be_named_as_owners(who, message, lead, vic, rita, mallory, org):
    UserFactory(username="gone", organisation=org, roles=[Role.OWNER], is_active=False)
    before = counts()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([good_row(**{"Owner username": who})]), by=lead)
    assert [str(p) for p in failure.value.problems] == [f"row 2, column Owner username: {message}"]
    assert counts() == before


def test_a_governance_lead_may_be_named_as_owner_by_username_or_email(lead):
    rows = [good_row(**{"Owner username": "lead"}), good_row(Reference="CC2", **{"Owner username": lead.email})]
    imports.import_recommendations(csv_bytes(rows), by=lead)
    imported = Recommendation.objects.filter(finding__inspection__slug=NEW_SLUG)
    assert list(imported.values_list("owner__username", flat=True)) == ["lead", "lead"]


def test_the_review_interval_is_bounded_by_the_models_bound(lead, olly):
    too_long = good_row(**{"Review interval (days)": str(MAX_REVIEW_INTERVAL_DAYS + 1)})
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([too_long]), by=lead)
    assert str(failure.value) == (
        f"row 2, column Review interval (days): must be between 1 and {MAX_REVIEW_INTERVAL_DAYS} days, "
        f"got {MAX_REVIEW_INTERVAL_DAYS + 1}"
    )


def test_a_target_date_the_workflow_would_refuse_is_reported_by_row_and_column(lead, olly):
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(csv_bytes([good_row(**{"Target date": "1999-12-31"})]), by=lead)
    assert str(failure.value) == "row 2, column Target date: must be between 2000 and 2099, got 1999-12-31"


# --- Inspection slugs are the organisation's own -------------------------------------------------


def test_another_organisations_inspection_slug_is_not_revealed_and_may_be_used(lead, olly, other_org):
    InspectionFactory(organisation=other_org, slug=NEW_SLUG)

    imports.import_recommendations(csv_bytes([good_row()]), by=lead)

    mine = Inspection.objects.get(slug=NEW_SLUG, organisation=lead.organisation)
    assert Recommendation.objects.filter(finding__inspection=mine).count() == 1
    assert Inspection.objects.filter(slug=NEW_SLUG).count() == 2


def test_the_organisations_own_inspection_slug_is_refused(lead, olly):
    InspectionFactory(organisation=lead.organisation, slug=NEW_SLUG)
    with pytest.raises(imports.ImportFailed, match="inspection 'acme-police-2026-ncpi' already exists"):
        imports.import_recommendations(csv_bytes([good_row()]), by=lead)


def test_a_seeded_slug_is_refused_only_for_the_organisation_it_is_seeded_for(cleveland, lead, mallory):
    row = good_row(**{"Inspection slug": "cleveland-police-2017-ncpi", "Owner username": ""})
    with pytest.raises(imports.ImportFailed, match="already exists"):
        imports.import_recommendations(csv_bytes([row]), by=lead)
    imports.import_recommendations(csv_bytes([row]), by=mallory)
    assert Inspection.objects.get(slug="cleveland-police-2017-ncpi", organisation=mallory.organisation)


def test_an_inspection_slug_is_unique_within_its_organisation_only(org, other_org):
    from django.db import IntegrityError, transaction

    InspectionFactory(organisation=org, slug="same")
    InspectionFactory(organisation=other_org, slug="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        InspectionFactory(organisation=org, slug="same")


# --- Size caps: checked before the file is read whole ------------------------------------------


def _raw_xlsx(rows_xml: str, dimension: str = "") -> bytes:
    """An .xlsx written as XML, so that it can hold what openpyxl would never write."""
    header = "".join(
        f'<c r="{get_column_letter(i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(HEADERS, 1)
    )
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'{dimension}<sheetData><row r="1">{header}</row>{rows_xml}</sheetData></worksheet>'
    )
    main = "http://schemas.openxmlformats.org"
    parts = {
        "[Content_Types].xml": (
            f'<Types xmlns="{main}/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{main}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{main}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}/spreadsheetml/2006/main" '
            f'xmlns:r="{main}/officeDocument/2006/relationships"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{main}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{main}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _wide_row(cells: int, empty: bool = False) -> str:
    cell = '<c r="{ref}2" s="0"/>' if empty else '<c r="{ref}2"><v>1</v></c>'
    return '<row r="2">' + "".join(cell.format(ref=get_column_letter(min(i, 16384))) for i in range(1, cells + 1))


def _read_with_peak(content: bytes) -> tuple[imports.ImportFailed, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(imports.ImportFailed) as failure:
            imports.read_rows(content, "wide.xlsx")
        return failure.value, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dimension", ["", '<dimension ref="A1:XFD2"/>'], ids=["no dimension", "a dimension"])
def test_a_row_with_a_huge_number_of_cells_is_refused_without_reading_it(dimension):
    content = _raw_xlsx(_wide_row(300_000) + "</row>", dimension)

    failure, seconds, peak = _read_with_peak(content)

    last = get_column_letter(imports.MAX_COLUMNS)
    assert str(failure) == (
        f"row 2, column {get_column_letter(imports.MAX_COLUMNS + 1)}: a value beyond the last column read "
        f"({last}); delete it, or move it into one of the export's columns"
    )
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB"  # the whole row would take hundreds
    assert seconds < 2


def test_a_row_of_many_formatted_but_empty_cells_is_refused_without_reading_it():
    failure, _, peak = _read_with_peak(_raw_xlsx(_wide_row(300_000, empty=True) + "</row>"))
    assert str(failure).startswith(f"row 2: this row has more than {imports.MAX_CELLS_PER_ROW} cells")
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


def test_a_value_beyond_the_columns_read_is_refused_not_dropped(lead, olly):
    far = get_column_letter(imports.MAX_COLUMNS + 3)
    rows = csv_bytes([[*good_row(), *[""] * (imports.MAX_COLUMNS + 2 - len(HEADERS)), "lost?"]])
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(rows, by=lead)
    assert str(failure.value).startswith(f"row 2, column {far}: a value beyond the last column read")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_more_findings_than_the_cap_are_refused_even_with_blank_rows_among_them(kind, lead, olly, monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    rows = [good_row(Reference=f"CC{n}") for n in range(1, 5)]
    rows.insert(2, [""] * len(HEADERS))
    content = csv_bytes(rows) if kind == "csv" else _xlsx(rows)
    before = counts()
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(content, by=lead)
    assert str(failure.value) == "file: the file has more than 3 findings; split it into files of at most 3 rows."
    assert counts() == before


def test_a_spreadsheet_that_unpacks_too_large_is_refused_before_it_is_opened(monkeypatch):
    monkeypatch.setattr(imports, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(imports.ImportFailed, match=r"^file: the spreadsheet unpacks to 0 MB; the limit is 0 MB"):
        imports.read_rows(_xlsx([good_row()]), "plan.xlsx")


def test_a_spreadsheet_with_findings_far_down_the_sheet_is_refused():
    far = imports.MAX_SHEET_ROWS + 1
    content = _raw_xlsx(f'<row r="{far}"><c r="A{far}"><v>1</v></c></row>')
    with pytest.raises(imports.ImportFailed) as failure:
        imports.read_rows(content, "plan.xlsx")
    assert (
        str(failure.value) == f"row {far}: the findings must be in the first {imports.MAX_SHEET_ROWS} rows of the sheet"
    )
