"""The filtered recommendation list as CSV or Excel, in the columns the import reads back.

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
from django.db.models import Prefetch, QuerySet

from tracker.models import Recommendation, Theme
from tracker.sources import quotations_prefetch

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    importable: bool = True  # False: written for readers, ignored by the import (the workflow owns it)


COLUMNS: tuple[Column, ...] = (
    Column("inspection", "Inspection slug"),
    Column("inspection_title", "Inspection"),
    Column("inspectorate", "Inspectorate"),
    Column("programme", "Programme"),
    Column("published_text", "Published"),
    Column("reference", "Reference"),
    Column("kind", "Kind"),
    Column("title", "Title"),
    Column("summary", "Summary"),
    # Whose words the quotation is follows its source's kind: "The inspectorate's words" only when the
    # source is the inspectorate's own report or news release (tracker.models.Source.label).
    Column("quote_label", "Quoted as", importable=False),
    Column("quote", "Quotation"),
    Column("source_title", "Source"),
    Column("source_kind", "Source kind"),
    Column("source_location", "Source location"),
    Column("themes", "Themes"),
    Column("owner", "Owner username"),
    Column("owner_name", "Owner", importable=False),
    Column("status", "Status", importable=False),
    Column("rag", "RAG", importable=False),
    Column("target_date", "Target date"),
    Column("review_interval_days", "Review interval (days)"),
    Column("next_review_due", "Next review due", importable=False),
    Column("outcome_measure", "Outcome measure"),
    Column("link", "Link", importable=False),
)


def neutralise(value: object) -> object:
    """Text a spreadsheet would treat as a formula gets a leading quote; other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_queryset(queryset: QuerySet[Recommendation]) -> QuerySet[Recommendation]:
    """Everything a row needs, in a fixed number of queries whatever the number of rows."""
    return queryset.select_related("finding__inspection", "owner").prefetch_related(
        Prefetch("finding__themes", queryset=Theme.objects.order_by("slug")), quotations_prefetch("finding__")
    )


def _row(rec: Recommendation) -> dict[str, object]:
    finding = rec.finding
    inspection = finding.inspection
    quotation = finding.primary_quotation
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
        "themes": "; ".join(theme.slug for theme in finding.themes.all()),
        "owner": rec.owner.username if rec.owner else "",
        "owner_name": str(rec.owner) if rec.owner else "",
        "status": rec.get_status_display(),
        "rag": rec.get_rag_display(),
        "target_date": rec.target_date,
        "review_interval_days": rec.review_interval_days,
        "next_review_due": rec.next_review_due,
        "outcome_measure": rec.outcome_measure,
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


def to_csv(data: Iterable[list[object]]) -> bytes:
    """The whole CSV at once (tests and small files); the page streams ``csv_chunks`` instead."""
    return b"".join(csv_chunks(data))


def write_xlsx(data: Iterable[list[object]], target, on_row: Callable[[int], None] | None = None) -> int:
    """Write the workbook to ``target`` (a path or a binary file); returns the number of rows.

    Write-only mode keeps rows out of memory; ``on_row`` is told the count after each row (progress).
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Recommendations")
    sheet.freeze_panes = "A2"
    sheet.append([column.header for column in COLUMNS])
    count = 0
    for count, row in enumerate(data, start=1):
        sheet.append(row)
        if on_row is not None:
            on_row(count)
    workbook.save(target)
    return count


def to_xlsx(data: Iterable[list[object]]) -> bytes:
    """The whole workbook at once (tests and the import's round trip); the site makes it in the worker."""
    buffer = io.BytesIO()
    write_xlsx(data, buffer)
    return buffer.getvalue()
