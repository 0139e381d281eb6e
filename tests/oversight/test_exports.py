"""CSV and Excel exports of the filtered list: the list page's filter, neutralised formulas, logged, scoped."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from tests.factories import InspectionFactory, RecommendationFactory, ThemeFactory
from tests.oversight.conftest import content, fetch
from tracker import exports, workflow
from tracker.models import AccessLog, Recommendation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker")]

DANGEROUS = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


def read_csv(response) -> list[dict]:
    assert response.streaming  # written a chunk at a time, never built whole in memory
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def read_xlsx(response) -> tuple[list[dict], list]:
    assert response["Content-Disposition"].startswith("attachment;")
    sheet = load_workbook(io.BytesIO(content(response))).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]], cells


def test_neutralise_prefixes_every_formula_start_and_nothing_else():
    for value in DANGEROUS:
        assert exports.neutralise(value) == "'" + value
    for value in ("Plain text", "1+1", "'=already quoted", "", 5, None, dt.date(2026, 1, 1)):
        assert exports.neutralise(value) == value


def test_csv_export_lists_what_the_list_page_lists_for_the_same_query(client, cleveland, rita, lead, olly):
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    workflow.assign_owner(recs["CC1"], by=lead, owner=olly)
    workflow.assign_owner(recs["CC2"], by=lead, owner=olly)
    client.force_login(rita)
    query = {"owner": olly.pk, "theme": "missing-children"}
    page = client.get(reverse("tracker:recommendations"), query).content.decode()
    assert "1 recommendation</h2>" in page  # only CC1 is olly's and about missing children
    rows = read_csv(client.get(reverse("tracker:export-csv"), query))
    assert [(r["Reference"], r["Owner username"]) for r in rows] == [("CC1", "olly")]
    assert rows[0]["Inspection slug"] == "cleveland-police-2025-ncpi"
    assert "missing-children" in rows[0]["Themes"].split("; ")
    everything = read_csv(client.get(reverse("tracker:export-csv")))
    assert len(everything) == 19


def test_the_list_page_links_to_both_exports_with_its_query_string(client, cleveland, rita):
    client.force_login(rita)
    html = client.get(reverse("tracker:recommendations"), {"status": "not_started", "page": "1"}).content.decode()
    assert 'href="/recommendations/export.csv?status=not_started"' in html
    assert 'href="/recommendations/export.xlsx?status=not_started"' in html


def test_formula_cells_are_neutralised_in_csv_and_excel(client, cleveland, rita, lead):
    recs = list(Recommendation.objects.filter(finding__inspection=cleveland).with_related().order_by("pk"))
    for rec, text in zip(recs, DANGEROUS, strict=False):
        # Written directly: the workflow strips a leading tab, but other routes (admin, API) may not.
        Recommendation.objects.filter(pk=rec.pk).update(title=text, outcome_measure=text)
    client.force_login(rita)
    csv_rows = read_csv(client.get(reverse("tracker:export-csv")))
    titles = {row["Title"] for row in csv_rows}
    assert {"'" + text for text in DANGEROUS} <= titles
    assert not any(t.startswith(exports.FORMULA_STARTS) for row in csv_rows for t in row.values())
    xlsx_rows, cells = read_xlsx(fetch(client, reverse("tracker:export-xlsx")))
    # XML stores a carriage return as a line feed; the protective quote is still first.
    assert {"'" + text.replace("\r", "\n") for text in DANGEROUS} <= {row["Title"] for row in xlsx_rows}
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # not one formula in the workbook
    assert not [c.coordinate for c in cells if isinstance(c.value, str) and c.value.startswith(exports.FORMULA_STARTS)]


def test_excel_dates_are_real_dates(client, cleveland, rita, lead):
    rec = Recommendation.objects.filter(finding__inspection=cleveland).with_related().first()
    workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 9, 30))
    client.force_login(rita)
    rows, _ = read_xlsx(fetch(client, reverse("tracker:export-xlsx")))
    [row] = [r for r in rows if r["Reference"] == rec.reference]
    assert row["Target date"].date() == dt.date(2026, 9, 30)


@pytest.mark.parametrize("name", ["tracker:export-csv", "tracker:export-xlsx"])
def test_each_export_is_logged_with_who_what_filter_and_row_count(client, cleveland, vic, name):
    client.force_login(vic)
    response = fetch(client, reverse(name), {"status": "not_started", "theme": "missing-children"})
    assert response.status_code == 200
    assert "attachment; filename=" in response["Content-Disposition"]
    log = AccessLog.objects.get()
    assert (log.user, log.action) == (vic, AccessLog.Action.EXPORT)
    assert log.detail["query"] == "status=not_started&theme=missing-children"
    expected = Recommendation.objects.filter(
        finding__inspection=cleveland, status="not_started", finding__themes__slug="missing-children"
    ).count()
    assert log.detail["rows"] == expected > 0
    assert log.detail["format"] == name.rsplit("-", 1)[1]


def test_an_invalid_filter_exports_nothing(client, cleveland, rita):
    client.force_login(rita)
    response = client.get(reverse("tracker:export-csv"), {"status": "bogus"})
    assert response.status_code == 400
    assert not AccessLog.objects.exists()


def test_owners_are_refused_and_other_organisations_see_none_of_ours(client, cleveland, olly, mallory):
    client.force_login(olly)
    assert client.get(reverse("tracker:export-csv")).status_code == 403
    assert client.get(reverse("tracker:export-xlsx")).status_code == 403
    client.force_login(mallory)
    assert read_csv(client.get(reverse("tracker:export-csv"))) == []
    # Filtering by an inspection of another organisation is not a valid choice for mallory.
    assert client.get(reverse("tracker:export-csv"), {"inspection": cleveland.pk}).status_code == 400


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = fetch(client, url)  # the Excel file's job runs in here too
        assert response.status_code == 200
        assert content(response)  # a streamed CSV reads its rows only as it is sent
    return len(captured)


@pytest.mark.parametrize("name", ["tracker:export-csv", "tracker:export-xlsx"])
def test_the_same_number_of_queries_at_10_and_200_rows(client, org, rita, olly, name):
    inspection = InspectionFactory(organisation=org)
    themes = [ThemeFactory(slug="t1"), ThemeFactory(slug="t2")]

    def add(count):
        for _ in range(count):
            rec = RecommendationFactory(
                finding__inspection=inspection, owner=olly, target_date=timezone.localdate() + dt.timedelta(days=9)
            )
            rec.finding.themes.add(*themes)

    url = reverse(name) + f"?inspection={inspection.pk}"
    client.force_login(rita)
    _queries(client, url)  # an earlier file of the same query, which each later Excel job deletes
    add(10)
    at_10 = _queries(client, url)
    add(190)
    at_200 = _queries(client, url)
    assert at_10 == at_200, (at_10, at_200)
    assert AccessLog.objects.order_by("-pk").first().detail["rows"] == 200


def test_the_csv_is_written_in_pieces_that_join_into_exactly_the_whole_file():
    data = [[f"row {n}", "=SUM(A1)", None, dt.date(2027, 3, 31)] for n in range(7)]
    pieces = list(exports.csv_chunks(data, rows_per_chunk=3))

    assert len(pieces) == 3  # header with rows 1-3, rows 4-6, row 7
    text = b"".join(pieces).decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0].startswith("Inspection slug,")
    assert lines[1:8] == [f"row {n},=SUM(A1),,2027-03-31" for n in range(7)]
    assert list(exports.csv_chunks([])) == [("\ufeff" + ",".join(c.header for c in exports.COLUMNS) + "\r\n").encode()]


def test_the_excel_file_is_ready_to_read_frozen_header_filter_widths_dates_in_words(client, cleveland, rita):
    client.force_login(rita)
    workbook = load_workbook(io.BytesIO(content(fetch(client, reverse("tracker:export-xlsx")))))
    sheet = workbook.worksheets[0]

    assert sheet.freeze_panes == "A2"  # the header row stays in view
    last = get_column_letter(len(exports.COLUMNS))
    assert sheet.auto_filter.ref == f"A1:{last}20"  # a filter on every column, over the 19 rows
    assert all(cell.font.b for cell in sheet[1])
    widths = {
        column.header: sheet.column_dimensions[get_column_letter(n)].width
        for n, column in enumerate(exports.COLUMNS, 1)
    }
    assert widths["Title"] == 50 and widths["Reference"] == 11 and widths["Latest update"] == 60
    assert all(width >= 10 for width in widths.values())
    due = next(
        cell for cell in sheet[2] if cell.column == 1 + [c.key for c in exports.COLUMNS].index("next_review_due")
    )
    assert due.is_date and due.number_format == "d mmmm yyyy"


def test_each_row_carries_its_latest_progress_update(client, cleveland, rita, lead, olly, time_machine):
    recs = {r.reference: r for r in Recommendation.objects.filter(finding__inspection=cleveland).with_related()}
    workflow.assign_owner(recs["CC1"], by=lead, owner=olly)
    time_machine.move_to(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC))
    workflow.post_update(recs["CC1"], by=olly, narrative="Audit planned.")
    time_machine.move_to(dt.datetime(2026, 3, 16, 23, 30, tzinfo=dt.UTC))  # still 16 March in London (GMT)
    workflow.post_update(recs["CC1"], by=olly, narrative="=Audit done in all three districts.")
    client.force_login(rita)

    rows, _ = read_xlsx(fetch(client, reverse("tracker:export-xlsx")))
    by_reference = {row["Reference"]: row for row in rows}
    assert by_reference["CC1"]["Latest update"] == "'=Audit done in all three districts."  # neutralised too
    assert by_reference["CC1"]["Latest update on"].date() == dt.date(2026, 3, 16)
    assert (by_reference["CC2"]["Latest update"], by_reference["CC2"]["Latest update on"]) == (None, None)
    csv_rows = {row["Reference"]: row for row in read_csv(client.get(reverse("tracker:export-csv")))}
    assert csv_rows["CC1"]["Latest update on"] == "2026-03-16"
