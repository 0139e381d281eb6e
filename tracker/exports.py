"""The filtered recommendation list as CSV or Excel, in the columns the import reads back, plus columns
for readers only (owner's name, status, RAG, next review, the latest progress update, a link).

Every text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a
carriage return) is written with a leading single quote, so opening an export never executes
anything a user typed. ``tracker.imports`` removes that quote again, so export then import is exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Func, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracker.models import MeasureDataPoint, OutcomeMeasure, PlanAction, ProgressUpdate, Recommendation, Theme
from tracker.sources import quotations_prefetch

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    importable: bool = True  # False: written for readers, ignored by the import (the workflow owns it)
    width: int = 14  # in Excel's character widths: enough to read a typical value without widening


COLUMNS: tuple[Column, ...] = (
    Column("inspection", "Inspection slug", width=24),
    Column("inspection_title", "Inspection", width=36),
    Column("inspectorate", "Inspectorate"),
    Column("programme", "Programme", width=24),
    Column("published_text", "Published"),
    Column("reference", "Reference", width=11),
    Column("kind", "Kind", width=18),
    Column("title", "Title", width=50),
    Column("summary", "Summary", width=60),
    # Whose words the quotation is follows its source's kind: "The inspectorate's words" only when the
    # source is the inspectorate's own report or news release (tracker.models.Source.label).
    Column("quote_label", "Quoted as", importable=False, width=24),
    Column("quote", "Quotation", width=60),
    Column("source_title", "Source", width=30),
    Column("source_kind", "Source kind", width=20),
    Column("source_location", "Source location", width=20),
    Column("themes", "Themes", width=30),
    Column("owner", "Owner username"),
    Column("owner_name", "Owner", importable=False, width=22),
    Column("status", "Status", importable=False, width=18),
    Column("rag", "RAG", importable=False, width=10),
    Column("target_date", "Target date", width=16),
    Column("review_interval_days", "Review interval (days)", width=12),
    Column("next_review_due", "Next review due", importable=False, width=16),
    Column("latest_update_at", "Latest update on", importable=False, width=16),
    Column("latest_update", "Latest update", importable=False, width=60),
    Column("outcome_measure", "Outcome measure", width=50),
    # Issue 16: the plan and the measures, summed up per recommendation (readers only; the import takes the
    # plan and the measures themselves from the optional columns below).
    Column("actions_done", "Actions done", importable=False, width=10),
    Column("actions_total", "Actions", importable=False, width=10),
    Column("next_action_due", "Next action due", importable=False, width=16),
    Column("actions_slipped", "Actions slipped", importable=False, width=10),
    Column("measures_total", "Measures", importable=False, width=10),
    Column("measures_off_track", "Measures off track", importable=False, width=10),
    # The plan and the measures themselves, one per line, in the form the import reads (tracker.imports):
    # optional columns, so a file without them imports as before.
    Column("action_plan", "Action plan", width=60),
    Column("measure_definitions", "Measure definitions", width=60),
    Column("link", "Link", importable=False, width=40),
)
DATE_FORMAT = "d mmmm yyyy"  # dates in words in Excel too ("15 January 2025"), still real dates


def neutralise(value: object) -> object:
    """Text a spreadsheet would treat as a formula gets a leading quote; other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _count(rows: QuerySet) -> Coalesce:
    """How many of ``rows`` (filtered on the outer recommendation), as a subquery: no GROUP BY, no join that
    would multiply the recommendation's row."""
    counted = rows.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def plan_summary(queryset: QuerySet[Recommendation], today: dt.date) -> QuerySet[Recommendation]:
    """Each recommendation's plan (done of total, next due, slipped) and measures (how many, how many off
    track: the latest value not at target, as on the dashboard), as correlated subqueries: the same number
    of queries however many rows, actions and data points."""
    actions = PlanAction.objects.filter(recommendation=OuterRef("pk"))
    latest = MeasureDataPoint.objects.filter(measure=OuterRef("pk")).order_by("-period", "-pk")
    measures = OutcomeMeasure.objects.filter(recommendation=OuterRef("pk"))
    off_track = measures.annotate(latest_value=Subquery(latest.values("value")[:1])).filter(
        Q(direction=OutcomeMeasure.Direction.HIGHER, latest_value__lt=F("target_value"))
        | Q(direction=OutcomeMeasure.Direction.LOWER, latest_value__gt=F("target_value"))
    )
    next_due = (
        actions.filter(PlanAction.open_q()).order_by().values("recommendation").annotate(d=Min("due_date")).values("d")
    )
    return queryset.annotate(
        actions_done=_count(actions.filter(status=PlanAction.Status.DONE)),
        actions_total=_count(actions),
        next_action_due=Subquery(next_due[:1]),
        actions_slipped=_count(actions.filter(PlanAction.slipped_q(today))),
        measures_total=_count(measures),
        measures_off_track=_count(off_track),
    )


SEPARATOR = " | "


def _part(value: object) -> str:
    """One part of a line: a separator or a line break inside it would split it, so they become spaces."""
    return " ".join(str(value).replace("|", "/").split())


def action_line(action: PlanAction) -> str:
    """description | owner's username | due date: what the import reads back as a new, not started action."""
    return SEPARATOR.join(_part(v) for v in (action.description, action.owner.username, action.due_date.isoformat()))


def measure_line(measure: OutcomeMeasure) -> str:
    """name | definition | unit | direction | baseline | baseline period | target | target date | frequency |
    supplier's username."""
    from tracker.outcomes import number

    values = (
        measure.name,
        measure.definition,
        measure.unit,
        measure.direction,
        number(measure.baseline_value),
        measure.baseline_period.isoformat(),
        number(measure.target_value),
        measure.target_date.isoformat(),
        measure.frequency,
        measure.supplier.username,
    )
    return SEPARATOR.join(_part(v) for v in values)


def export_queryset(queryset: QuerySet[Recommendation]) -> QuerySet[Recommendation]:
    """Everything a row needs, its latest progress update and its plan's and measures' summary included, in
    a fixed number of queries whatever the number of rows."""
    latest = ProgressUpdate.objects.filter(recommendation=OuterRef("pk")).order_by("-created_at", "-pk")
    queryset = plan_summary(queryset, timezone.localdate())
    return (
        queryset.select_related("finding__inspection", "owner")
        # Each as a plain list (to_attr): a prefetch into the related manager costs a queryset per row and
        # relation, which was half the time of a long export. A query per relation per chunk of rows
        # (``rows`` reads CHUNK at a time), whatever the number of rows.
        .prefetch_related(
            Prefetch("finding__themes", queryset=Theme.objects.order_by("slug"), to_attr="export_themes"),
            quotations_prefetch("finding__", to_attr="export_quotations"),
            Prefetch(
                "plan_actions",
                queryset=PlanAction.objects.select_related("owner").order_by("due_date", "pk"),
                to_attr="export_actions",
            ),
            Prefetch(
                "measures",
                queryset=OutcomeMeasure.objects.select_related("supplier").order_by("name", "pk"),
                to_attr="export_measures",
            ),
        )
        .annotate(
            latest_update_at=Subquery(latest.values("created_at")[:1]),
            latest_update_text=Subquery(latest.values("narrative")[:1]),
        )
    )


def _row(rec: Recommendation) -> dict[str, object]:
    finding = rec.finding
    inspection = finding.inspection
    quotation = finding.export_quotations[0] if finding.export_quotations else None  # in order: the primary
    return {
        "inspection": inspection.slug,
        "inspection_title": inspection.title,
        "inspectorate": inspection.get_inspectorate_display(),
        "programme": inspection.programme,
        "published_text": inspection.published_text,
        "reference": finding.reference,
        "kind": finding.get_kind_display(),
        "title": rec.title,
        "summary": finding.summary,
        "quote_label": quotation.label if quotation else "",
        "quote": quotation.text if quotation else "",
        "source_title": quotation.source.title if quotation else "",
        "source_kind": quotation.source.get_kind_display() if quotation else "",
        "source_location": quotation.location if quotation else "",
        "themes": "; ".join(theme.slug for theme in finding.export_themes),
        "owner": rec.owner.username if rec.owner else "",
        "owner_name": str(rec.owner) if rec.owner else "",
        "status": rec.get_status_display(),
        "rag": rec.get_rag_display(),
        "target_date": rec.target_date,
        "review_interval_days": rec.review_interval_days,
        "next_review_due": rec.next_review_due,
        # A date, not a time: Excel has no time zones, and a board reads the day.
        "latest_update_at": timezone.localtime(rec.latest_update_at).date() if rec.latest_update_at else None,
        "latest_update": rec.latest_update_text or "",
        "outcome_measure": rec.outcome_measure,
        "actions_done": rec.actions_done,
        "actions_total": rec.actions_total,
        "next_action_due": rec.next_action_due,
        "actions_slipped": rec.actions_slipped,
        "measures_total": rec.measures_total,
        "measures_off_track": rec.measures_off_track,
        "action_plan": "\n".join(action_line(action) for action in rec.export_actions),
        "measure_definitions": "\n".join(measure_line(measure) for measure in rec.export_measures),
        "link": f"{settings.SITE_URL}{rec.get_absolute_url()}",
    }


# Rows are read from the database this many at a time (with their themes), so memory stays flat however
# many recommendations are exported, and no query carries more ids than SQLite allows.
CHUNK = 1000


def rows(queryset: QuerySet[Recommendation]) -> Iterator[list[object]]:
    """Neutralised cell values, one list per recommendation, in COLUMNS order, read in chunks."""
    for rec in export_queryset(queryset).iterator(chunk_size=CHUNK):
        values = _row(rec)
        yield [neutralise(values[column.key]) for column in COLUMNS]


def _csv_cells(row: Iterable[object]) -> list[object]:
    return ["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row]


def csv_chunks(data: Iterable[list[object]], rows_per_chunk: int = 200) -> Iterator[bytes]:
    """The CSV a piece at a time, for a streamed response: a byte-order mark (so Excel reads UTF-8
    accents and curly quotes), the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([column.header for column in COLUMNS])
    for count, row in enumerate(data, start=1):
        writer.writerow(_csv_cells(row))
        if count % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def write_csv(data: Iterable[list[object]], target: str, on_row: Callable[[int], None] | None = None) -> int:
    """The CSV of ``csv_chunks`` written to the file at ``target`` (the worker's large exports); returns the
    number of rows. ``on_row`` is told the count after each row (progress)."""
    count = 0

    def counted() -> Iterator[list[object]]:
        nonlocal count
        for count, row in enumerate(data, start=1):
            yield row
            if on_row is not None:
                on_row(count)

    with open(target, "wb") as out:
        out.writelines(csv_chunks(counted()))
    return count


def to_csv(data: Iterable[list[object]]) -> bytes:
    """The whole CSV at once (tests and small files); the page streams ``csv_chunks`` instead."""
    return b"".join(csv_chunks(data))


def write_xlsx(data: Iterable[list[object]], target, on_row: Callable[[int], None] | None = None) -> int:
    """Write the workbook to ``target`` (a path or a binary file); returns the number of rows.

    Write-only mode keeps rows out of memory; ``on_row`` is told the count after each row (progress).
    The header row is bold and frozen, every column has a readable width and a filter, and dates are
    written in words. Widths and the frozen row must be set before the first row is written (write-only
    mode writes the sheet's head first); the filter's range, written at the end, once the rows are known.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Recommendations")
    sheet.freeze_panes = "A2"
    for number, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = column.width
    bold = Font(bold=True)
    header = []
    for column in COLUMNS:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)

    def cell(value: object) -> object:
        if isinstance(value, dt.date):
            dated = WriteOnlyCell(sheet, value=value)
            dated.number_format = DATE_FORMAT
            return dated
        return value

    count = 0
    for count, row in enumerate(data, start=1):
        sheet.append([cell(value) for value in row])
        if on_row is not None:
            on_row(count)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    workbook.save(target)
    return count


def to_xlsx(data: Iterable[list[object]]) -> bytes:
    """The whole workbook at once (tests and the import's round trip); the site makes it in the worker."""
    buffer = io.BytesIO()
    write_xlsx(data, buffer)
    return buffer.getvalue()
