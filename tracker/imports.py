"""Import recommendations for inspections that are not in ``seeds/``, from CSV or Excel.

The file has one row per finding, in the columns ``tracker.exports`` writes (so an export can be
edited and imported as a new inspection). Like seeding, an import is all-or-nothing: every row is
checked and every problem reported as "row N, column X: message" before anything is written, and
the writes happen in one transaction through ``tracker.workflow``. An import only ever creates:
an inspection that already exists (or is defined in ``seeds/``) is refused, never merged into.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from django.conf import settings
from django.db import IntegrityError, transaction

from tracker import permissions, workflow
from tracker.exports import COLUMNS, FORMULA_STARTS
from tracker.models import AccessLog, Finding, Inspection, Theme, User
from tracker.seeding import REFERENCE, SLUG, default_paths

if TYPE_CHECKING:
    from tracker.models import Recommendation

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 2000
MAX_INTERVAL_DAYS = 366

HEADERS = {column.key: column.header for column in COLUMNS}
REQUIRED = ("inspection", "inspection_title", "inspectorate", "programme", "reference", "kind", "title", "summary")
REQUIRED += ("source_title",)
INSPECTION_FIELDS = ("inspection_title", "inspectorate", "programme", "published_text")


class ImportFailed(Exception):
    """Nothing was imported. ``problems`` lists each one with its row and column."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return f"file: {self.message}"
        if self.column:
            return f"row {self.row}, column {self.column}: {self.message}"
        return f"row {self.row}: {self.message}"


@dataclass
class Row:
    number: int
    values: dict[str, object]


@dataclass
class PlannedRecommendation:
    row: int
    reference: str
    kind: str
    title: str
    summary: str
    quote: str
    source_title: str
    source_location: str
    themes: list[Theme]
    owner: User | None
    target_date: dt.date | None
    interval: int
    outcome_measure: str


@dataclass
class PlannedInspection:
    row: int
    slug: str
    title: str
    inspectorate: str
    programme: str
    published_text: str
    recommendations: list[PlannedRecommendation] = field(default_factory=list)


@dataclass
class ImportReport:
    inspections: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.recommendations)


# --- Reading the table -------------------------------------------------------------------------


def _normal(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", header.lower()).strip()


_BY_HEADER = {_normal(column.header): column for column in COLUMNS}


def _is_xlsx(content: bytes, filename: str) -> bool:
    return content.startswith(b"PK\x03\x04") or filename.lower().endswith((".xlsx", ".xlsm"))


def _csv_rows(content: bytes) -> list[tuple[int, list[object]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = content[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            [Problem(row, "", "the file is not UTF-8 text. In Excel, save it as 'CSV UTF-8' and try again.")]
        ) from None
    if "\x00" in text:
        raise ImportFailed([Problem(None, "", "the file contains NUL bytes: it is not a CSV file.")])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    result: list[tuple[int, list[object]]] = []
    try:
        for values in reader:
            result.append((reader.line_num, list(values)))
            if len(result) > MAX_ROWS + 1:
                break
    except csv.Error as exc:
        raise ImportFailed([Problem(reader.line_num, "", f"not valid CSV: {exc}")]) from None
    return result


def _xlsx_rows(content: bytes) -> list[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style" and similar noise from other tools' files
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
            sheet = workbook.worksheets[0]
            result = []
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                result.append((number, list(values)))
                if len(result) > MAX_ROWS + 1:
                    break
            workbook.close()
    except Exception:  # openpyxl raises many kinds of error for a damaged file; the message is the same
        raise ImportFailed([Problem(None, "", "this is not a readable Excel (.xlsx) file.")]) from None
    return result


def read_rows(content: bytes, filename: str = "") -> list[Row]:
    """The data rows keyed by column, with spreadsheet row numbers (the header is row 1)."""
    if len(content) > MAX_BYTES:
        raise ImportFailed([Problem(None, "", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB.")])
    table = _xlsx_rows(content) if _is_xlsx(content, filename) else _csv_rows(content)
    table = [(n, values) for n, values in table if any(v not in (None, "") for v in values)]
    if not table:
        raise ImportFailed([Problem(None, "", "the file is empty: it needs a header row and one row per finding.")])
    header_row, header = table[0]
    problems: list[Problem] = []
    keys: list[str | None] = []
    for value in header:
        text = "" if value is None else str(value).strip()
        column = _BY_HEADER.get(_normal(text))
        if not text:
            keys.append(None)
        elif column is None:
            problems.append(Problem(header_row, text, "unknown column (use the headings of an export)"))
            keys.append(None)
        elif column.key in keys:
            problems.append(Problem(header_row, text, "this column appears twice"))
            keys.append(None)
        else:
            keys.append(column.key)
    for key in REQUIRED:
        if key not in keys:
            problems.append(Problem(header_row, HEADERS[key], "missing column"))
    if len(table) - 1 > MAX_ROWS:
        problems.append(Problem(None, "", f"the file has more than {MAX_ROWS} rows; split it."))
    if problems:
        raise ImportFailed(problems)
    rows = []
    for number, values in table[1:]:
        cells = {key: value for key, value in zip(keys, values, strict=False) if key is not None}
        if len(values) > len(keys) and any(v not in (None, "") for v in values[len(keys) :]):
            problems.append(Problem(number, "", "this row has more cells than the header has columns"))
        rows.append(Row(number, cells))
    if not rows:
        raise ImportFailed([Problem(None, "", "the file has a header row but no findings.")])
    if problems:
        raise ImportFailed(problems)
    return rows


# --- Checking each row -------------------------------------------------------------------------


class _Row:
    """Reads one row's cells, recording a problem for each bad one."""

    def __init__(self, row: Row, problems: list[Problem]) -> None:
        self.row = row
        self.problems = problems

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.row.number, HEADERS[key], message))

    def text(self, key: str, max_length: int, required: bool = False) -> str:
        value = self.row.values.get(key)
        if value is None:
            value = ""
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        value = str(value)
        if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
            value = value[1:]  # an export's protective quote: the text itself is safe to keep
        elif value.startswith(FORMULA_STARTS) and value.strip():
            self.fail(key, "looks like a spreadsheet formula, which is refused; if it is text, start it with '")
            return ""
        value = value.strip()
        if required and not value:
            self.fail(key, "must not be empty")
        elif len(value) > max_length:
            self.fail(key, f"is {len(value)} characters long; the limit is {max_length}")
        return value

    def choice(self, key: str, choices: list[tuple[str, str]]) -> str:
        value = self.text(key, 200, required=True)
        if not value:
            return ""
        for code, label in choices:
            if value.lower() in (code.lower(), str(label).lower()):
                return code
        self.fail(key, f"unknown value {value!r} (expected one of: {', '.join(str(label) for _, label in choices)})")
        return ""

    def date(self, key: str) -> dt.date | None:
        value = self.row.values.get(key)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = self.text(key, 40)
        if not text:
            return None
        for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return dt.datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        self.fail(key, f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31")
        return None

    def interval(self, key: str) -> int:
        value = self.row.values.get(key)
        default = settings.DEFAULT_REVIEW_INTERVAL_DAYS
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            days = value
        else:
            text = self.text(key, 10)
            if not text:
                return default
            if not text.isdigit():
                self.fail(key, f"{text!r} is not a whole number of days")
                return default
            days = int(text)
        if not 1 <= days <= MAX_INTERVAL_DAYS:
            self.fail(key, f"must be between 1 and {MAX_INTERVAL_DAYS} days, got {days}")
            return default
        return days


def _seeded_slugs() -> dict[str, str]:
    """Inspection slugs defined in seeds/: those are loaded by seed_findings, never imported."""
    slugs = {}
    for path in default_paths():
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            slugs[document["inspection"]["slug"]] = path.name
        except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
            continue  # a broken seed file is seed_findings' problem to report
    return slugs


def plan(rows: list[Row], *, organisation_id: int) -> list[PlannedInspection]:
    """Check every row against the database; raise ImportFailed listing every problem."""
    problems: list[Problem] = []
    themes = {theme.slug: theme for theme in Theme.objects.all()}
    users = list(User.objects.filter(organisation_id=organisation_id))
    by_username = {u.username.lower(): u for u in users}
    by_email = {u.email.lower(): u for u in users if u.email}
    seeded = _seeded_slugs()
    inspections: dict[str, PlannedInspection] = {}
    references: dict[tuple[str, str], int] = {}

    for row in rows:
        check = _Row(row, problems)
        slug = check.text("inspection", 100, required=True)
        if slug and not SLUG.match(slug):
            check.fail("inspection", f"{slug!r} must be lowercase letters, digits and hyphens, e.g. acme-2026-ncpi")
            slug = ""
        details = {
            "inspection_title": check.text("inspection_title", 300, required=True),
            "inspectorate": check.choice("inspectorate", Inspection.Inspectorate.choices),
            "programme": check.text("programme", 200, required=True),
            "published_text": check.text("published_text", 100),
        }
        if slug and slug not in inspections:
            inspections[slug] = PlannedInspection(
                row.number,
                slug,
                details["inspection_title"],
                details["inspectorate"],
                details["programme"],
                details["published_text"],
            )
        elif slug:
            first = inspections[slug]
            planned = {
                "inspection_title": first.title,
                "inspectorate": first.inspectorate,
                "programme": first.programme,
                "published_text": first.published_text,
            }
            for key in INSPECTION_FIELDS:
                if details[key] and planned[key] and details[key] != planned[key]:
                    check.fail(key, f"differs from row {first.row} for the same inspection {slug!r}")

        reference = check.text("reference", 20, required=True)
        if reference and not REFERENCE.match(reference):
            check.fail("reference", f"{reference!r} must look like CC1 or AFI12")
        elif reference and slug:
            seen = references.get((slug, reference))
            if seen:
                check.fail("reference", f"duplicate reference {reference} in {slug!r} (also on row {seen})")
            else:
                references[(slug, reference)] = row.number

        chosen_themes = []
        for name in re.split(r"[;,]", check.text("themes", 1000)):
            name = name.strip()
            if not name:
                continue
            if name not in themes:
                check.fail("themes", f"unknown theme {name!r} (known: {', '.join(sorted(themes)) or 'none'})")
            else:
                chosen_themes.append(themes[name])

        owner_text = check.text("owner", 254)
        owner = None
        if owner_text:
            owner = by_username.get(owner_text.lower()) or by_email.get(owner_text.lower())
            if owner is None:
                check.fail("owner", f"nobody called {owner_text!r} in your organisation")
            elif not owner.is_active:
                check.fail("owner", f"{owner_text!r} is no longer active and cannot own a recommendation")
                owner = None

        recommendation = PlannedRecommendation(
            row=row.number,
            reference=reference,
            kind=check.choice("kind", Finding.Kind.choices),
            title=check.text("title", 200, required=True),
            summary=check.text("summary", 2000, required=True),
            quote=check.text("quote", 600),
            source_title=check.text("source_title", 300, required=True),
            source_location=check.text("source_location", 100),
            themes=chosen_themes,
            owner=owner,
            target_date=check.date("target_date"),
            interval=check.interval("review_interval_days"),
            outcome_measure=check.text("outcome_measure", 2000),
        )
        if slug:
            inspections[slug].recommendations.append(recommendation)

    existing = set(Inspection.objects.filter(slug__in=inspections).values_list("slug", flat=True))
    for slug, planned in inspections.items():
        if slug in existing:
            problems.append(
                Problem(
                    planned.row,
                    HEADERS["inspection"],
                    f"inspection {slug!r} already exists; an import only creates new inspections",
                )
            )
        elif slug in seeded:
            problems.append(
                Problem(
                    planned.row,
                    HEADERS["inspection"],
                    f"inspection {slug!r} is defined in seeds/{seeded[slug]}; load it with seed_findings",
                )
            )
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise ImportFailed(problems)
    return list(inspections.values())


# --- Loading -----------------------------------------------------------------------------------


def import_recommendations(content: bytes, *, by: User, filename: str = "", dry_run: bool = False) -> ImportReport:
    """Check the whole file, then create its inspections and recommendations in one transaction."""
    if not permissions.is_governance_lead(by) or by.organisation_id is None:
        raise permissions.NotPermitted("Only a governance lead can import recommendations.")
    planned = plan(read_rows(content, filename), organisation_id=by.organisation_id)
    report = ImportReport()
    name = Path(filename).name or "an uploaded file"
    current_row = None
    try:
        with transaction.atomic():
            for item in planned:
                current_row = item.row
                inspection = Inspection.objects.create(
                    organisation_id=by.organisation_id,
                    slug=item.slug,
                    inspectorate=item.inspectorate,
                    programme=item.programme,
                    title=item.title,
                    published_text=item.published_text,
                    tracked=True,
                )
                report.inspections.append(inspection.slug)
                for row in item.recommendations:
                    current_row = row.row
                    _create(inspection, row, by=by, source=name)
                    report.recommendations.append(f"{inspection.slug} {row.reference}")
            AccessLog.objects.create(
                user=by,
                action=AccessLog.Action.IMPORT,
                object_repr=f"{report.rows} recommendations from {name}"[:300],
                detail={"filename": name, "inspections": report.inspections, "rows": report.rows},
            )
            if dry_run:
                transaction.set_rollback(True)
    except (workflow.WorkflowError, permissions.NotPermitted, IntegrityError) as exc:
        # Checked above, so only a change made by someone else in the meantime gets here.
        raise ImportFailed([Problem(current_row, "", f"could not be saved: {exc}")]) from None
    return report


def _create(inspection: Inspection, row: PlannedRecommendation, *, by: User, source: str) -> Recommendation:
    finding = Finding.objects.create(
        inspection=inspection,
        reference=row.reference,
        kind=row.kind,
        title=row.title,
        summary=row.summary,
        quote=row.quote,
        source_title=row.source_title,
        source_location=row.source_location,
    )
    if row.themes:
        finding.themes.set(row.themes)
    rec = workflow.create_recommendation(
        finding,
        by=by,
        interval_days=row.interval,
        title=row.title,
        outcome_measure=row.outcome_measure,
        reason=f"Imported from {source}",
    )
    if row.owner is not None:
        workflow.assign_owner(rec, by=by, owner=row.owner, reason=f"Imported from {source}")
    if row.target_date is not None:
        workflow.change_target_date(rec, by=by, target_date=row.target_date, reason=f"Imported from {source}")
    return rec


def problems_text(problems: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in problems)
