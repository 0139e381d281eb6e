"""The filtered recommendation list as CSV or Excel, in the columns the import reads back.

Every text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a
carriage return) is written with a leading single quote, so opening an export never executes
anything a user typed. ``tracker.imports`` removes that quote again, so export then import is exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from tracker.models import Recommendation, Theme

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
    Column("quote", "Inspectorate's words"),
    Column("source_title", "Source"),
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
        Prefetch("finding__themes", queryset=Theme.objects.order_by("slug"))
    )


def _row(rec: Recommendation) -> dict[str, object]:
    finding = rec.finding
    inspection = finding.inspection
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
        "quote": finding.quote,
        "source_title": finding.source_title,
        "source_location": finding.source_location,
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


def rows(queryset: QuerySet[Recommendation]) -> Iterator[list[object]]:
    """Neutralised cell values, one list per recommendation, in COLUMNS order."""
    for rec in export_queryset(queryset):
        values = _row(rec)
        yield [neutralise(values[column.key]) for column in COLUMNS]


def to_csv(data: Iterable[list[object]]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens accented names and curly quotes correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.header for column in COLUMNS])
    for row in data:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(data: Iterable[list[object]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Recommendations")
    sheet.freeze_panes = "A2"
    sheet.append([column.header for column in COLUMNS])
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
