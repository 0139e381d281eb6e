"""Import recommendations for inspections that are not in ``seeds/``, from CSV or Excel.

The file has one row per finding, in the columns ``tracker.exports`` writes (so an export can be
edited and imported as a new inspection). Like seeding, an import is all-or-nothing: every row is
checked (by ``tracker.finding_rules``, the rules seeding uses too) and every problem reported as
"row N, column X: message" before anything is written. A dry run stops there and writes nothing.
The writes happen in one transaction, a thousand rows per INSERT, with the rules of ``tracker.workflow``
(who may create, who may own, interval and date bounds) asked once for the whole file; each row gets
the timeline events and history that creating, assigning and dating it one by one would give. An
import only ever creates: an inspection that already exists in the organisation (or is defined for it
in ``seeds/``) is refused, never merged into.

Reading is bounded before it is done: the file's size, what its spreadsheet unpacks to, the cells
read per row and the rows per import are capped, and a file over a cap is refused with a message
naming it rather than read whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml
from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from openpyxl.utils import column_index_from_string, get_column_letter
from simple_history.utils import bulk_create_with_history

from tracker import finding_rules as rules
from tracker import notifications, outcomes, permissions, workflow
from tracker.errors import InvalidInput
from tracker.exports import COLUMNS, FORMULA_STARTS
from tracker.models import (
    MAX_REVIEW_INTERVAL_DAYS,
    AccessLog,
    Finding,
    Inspection,
    Organisation,
    OutcomeMeasure,
    PlanAction,
    Quotation,
    Recommendation,
    RecommendationEvent,
    Source,
    SourceKind,
    Theme,
    User,
)
from tracker.seeding import default_paths

Event = RecommendationEvent.Action

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 10_000
# Rows per INSERT: a few statements per thousand rows, and well inside SQLite's and PostgreSQL's
# limits on the parameters of one statement.
BATCH = 1000
MAX_INTERVAL_DAYS = MAX_REVIEW_INTERVAL_DAYS  # the one bound, shared with the models, admin and API
# Cells read per row: an export's columns and a small margin. A value further right is refused, not lost.
MAX_COLUMNS = len(COLUMNS) + 5
# Cell elements a spreadsheet row may hold, formatted empty ones included, before it is refused unread.
MAX_CELLS_PER_ROW = 4 * MAX_COLUMNS
# Sheet rows looked at, blank ones included: the findings must start near the top.
MAX_SHEET_ROWS = 2 * MAX_ROWS + 1
# What an .xlsx (a zip) may unpack to; the zip's directory says so before anything is unpacked.
MAX_UNPACKED_BYTES = 128 * 1024 * 1024

HEADERS = {column.key: column.header for column in COLUMNS}
REQUIRED = ("inspection", "inspection_title", "inspectorate", "programme", "reference", "kind", "title", "summary")
REQUIRED += ("source_title",)
# The rules' names for the inspection's columns (the other columns are named as the rules name them).
INSPECTION_COLUMNS = {"slug": "inspection", "title": "inspection_title"}


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
class PlannedAction:
    description: str
    owner: User
    due_date: dt.date


@dataclass
class PlannedMeasure:
    name: str
    definition: str
    unit: str
    direction: str
    baseline_value: object
    baseline_period: dt.date
    target_value: object
    target_date: dt.date
    frequency: str
    supplier: User


@dataclass
class PlannedRecommendation:
    row: int
    finding: rules.FindingValues
    themes: list[Theme]
    owner: User | None
    target_date: dt.date | None
    interval: int
    source_kind: str = SourceKind.THIRD_PARTY_SUMMARY
    # Issue 16: the optional "Action plan" and "Measure definitions" columns (none when absent or blank).
    actions: list[PlannedAction] = field(default_factory=list)
    measures: list[PlannedMeasure] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return self.finding.reference


@dataclass
class PlannedInspection:
    row: int
    values: rules.InspectionValues
    recommendations: list[PlannedRecommendation] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.values.slug


class Progress:
    """What an import tells whoever watches it (the worker's job page); by default, nobody.

    ``saved`` is called inside the transaction that writes the rows, so what it records commits or
    rolls back with them.
    """

    def read(self, total: int) -> None: ...

    def checked(self, done: int) -> None: ...

    def saving(self) -> None: ...

    def saved(self, report: ImportReport) -> None: ...


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
# Exports made before quotations were labelled by their source called the quotation column this.
_BY_HEADER[_normal("Inspectorate's words")] = next(column for column in COLUMNS if column.key == "quote")
_LAST = get_column_letter(MAX_COLUMNS)


def _too_many_rows() -> str:
    return f"the file has more than {MAX_ROWS} findings; split it into files of at most {MAX_ROWS} rows."


def _beyond(row: int, column: int) -> Problem:
    return Problem(
        row,
        get_column_letter(column),
        f"a value beyond the last column read ({_LAST}); delete it, or move it into one of the export's columns",
    )


def _blank(values: Iterable[object]) -> bool:
    return all(v is None or v == "" for v in values)


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
        # Rows are numbered as a spreadsheet numbers them: a cell of several lines (an action plan, say) is
        # still one row, so the record's number, not the line the reader has reached.
        for number, values in enumerate(reader, start=1):
            if len(values) > MAX_COLUMNS:
                extra = next((i for i, v in enumerate(values[MAX_COLUMNS:]) if v.strip()), None)
                if extra is not None:
                    raise ImportFailed([_beyond(number, MAX_COLUMNS + extra + 1)])
                del values[MAX_COLUMNS:]
            if _blank(values):
                continue
            result.append((number, list(values)))
            if len(result) > MAX_ROWS + 1:
                raise ImportFailed([Problem(None, "", _too_many_rows())])
    except csv.Error as exc:
        raise ImportFailed([Problem(reader.line_num, "", f"not valid CSV: {exc}")]) from None
    return result


def _scan_sheet(stream: IO[bytes], where: str = "") -> None:
    """Refuse a sheet over the caps while streaming through its XML, before openpyxl opens the workbook.

    openpyxl builds each row whole, and without a <dimension> element parses a whole sheet just to open
    the workbook, so a row of a million cells costs seconds and gigabytes even when only the first few
    columns are asked for. Here the count stops at the first cell over a cap.
    """
    from defusedxml.ElementTree import iterparse

    def refuse(row: int | None, message: str) -> ImportFailed:
        return ImportFailed([Problem(row, "", message + where)])

    rows = rows_with_values = 0
    number = cells = column = 0
    has_value = False
    parent = None
    for event, element in iterparse(stream, events=("start", "end")):
        tag = element.tag.rpartition("}")[2]
        if event == "start":
            if tag == "sheetData":
                parent = element
            elif tag == "row":
                rows += 1
                if rows > MAX_SHEET_ROWS:
                    raise refuse(
                        None,
                        f"the sheet has more than {MAX_SHEET_ROWS} rows (some perhaps formatted but empty); "
                        "copy the findings into a new workbook",
                    )
                number = int(element.get("r") or number + 1)
                cells = column = 0
                has_value = False
            elif tag == "c":
                cells += 1
                if cells > MAX_CELLS_PER_ROW:
                    raise refuse(
                        number,
                        f"this row has more than {MAX_CELLS_PER_ROW} cells (some perhaps formatted but empty); "
                        f"only columns A to {_LAST} are read. Delete the cells to the right of {_LAST}",
                    )
            continue
        if tag == "c":
            reference = element.get("r")
            letters = reference.rstrip("0123456789") if reference else ""
            column = column_index_from_string(letters) if letters else column + 1
            if any(len(child) or (child.text or "").strip() for child in element):
                has_value = True
                if column > MAX_COLUMNS:
                    problem = _beyond(number, column)
                    raise ImportFailed([Problem(problem.row, problem.column, problem.message + where)])
            element.clear()
        elif tag == "row":
            if has_value:
                if number > MAX_SHEET_ROWS:
                    raise refuse(number, f"the findings must be in the first {MAX_SHEET_ROWS} rows of the sheet")
                rows_with_values += 1
                if rows_with_values > MAX_ROWS + 1:
                    raise refuse(None, _too_many_rows())
            element.clear()
            if parent is not None:
                parent.remove(element)  # rows already counted would otherwise stay in memory


def _xlsx_rows(content: bytes) -> list[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    unreadable = ImportFailed([Problem(None, "", "this is not a readable Excel (.xlsx) file.")])
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            # Declared sizes bind: zipfile stops reading a member at its declared size.
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ImportFailed(
                    [
                        Problem(
                            None,
                            "",
                            f"the spreadsheet unpacks to {unpacked // (1024 * 1024)} MB; the limit is "
                            f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB. Copy the findings into a new workbook.",
                        )
                    ]
                )
            # openpyxl opens every sheet of the workbook, so every sheet is held to the caps.
            for name in sorted(n for n in archive.namelist() if re.fullmatch(r"xl/worksheets/[^/]+\.xml", n)):
                with archive.open(name) as stream:
                    _scan_sheet(stream, "" if name == "xl/worksheets/sheet1.xml" else f" (in {name})")
    except ImportFailed:
        raise
    except Exception:  # a damaged zip or XML; openpyxl would refuse it too
        raise unreadable from None
    result: list[tuple[int, list[object]]] = []
    workbook = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style" and similar noise from other tools' files
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
            rows = workbook.worksheets[0].iter_rows(max_row=MAX_SHEET_ROWS, max_col=MAX_COLUMNS, values_only=True)
            for number, values in enumerate(rows, start=1):
                if not _blank(values):
                    result.append((number, list(values)))
    except Exception:  # openpyxl raises many kinds of error for a damaged file; the message is the same
        raise unreadable from None
    finally:
        if workbook is not None:
            workbook.close()
    return result


def read_rows(content: bytes, filename: str = "") -> list[Row]:
    """The data rows keyed by column, with spreadsheet row numbers (the header is row 1)."""
    if len(content) > MAX_BYTES:
        raise ImportFailed([Problem(None, "", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB.")])
    table = _xlsx_rows(content) if _is_xlsx(content, filename) else _csv_rows(content)
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
    if problems:
        raise ImportFailed(problems)
    rows = []
    for number, values in table[1:]:
        cells = {key: value for key, value in zip(keys, values, strict=False) if key is not None}
        if len(values) > len(keys) and not _blank(values[len(keys) :]):
            problems.append(Problem(number, "", "this row has more cells than the header has columns"))
        rows.append(Row(number, cells))
    if not rows:
        raise ImportFailed([Problem(None, "", "the file has a header row but no findings.")])
    if problems:
        raise ImportFailed(problems)
    return rows


# --- Checking each row -------------------------------------------------------------------------


class _Cells:
    """One row as ``finding_rules`` reads it: cells as text, problems as "row N, column X"."""

    def __init__(self, row: Row, problems: list[Problem], names: dict[str, str] | None = None) -> None:
        self.row = row
        self.problems = problems
        self.names = names or {}
        self._read: dict[str, object] = {}

    def key(self, name: str) -> str:
        return self.names.get(name, name)

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.row.number, HEADERS[self.key(name)], message))

    def get(self, name: str) -> object:
        if name not in self._read:
            self._read[name] = self._cell(name)
        return self._read[name]

    def _cell(self, name: str) -> object:
        key = self.key(name)
        if key not in HEADERS:
            return None  # not a column of the file (a source reference, say)
        value = self.row.values.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        value = str(value)
        if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
            value = value[1:]  # an export's protective quote: the text itself is safe to keep
        elif value.startswith(FORMULA_STARTS) and value.strip():
            self.fail(name, "looks like a spreadsheet formula, which is refused; if it is text, start it with '")
            return rules.INVALID
        if name == "themes":
            return [part.strip() for part in re.split(r"[;,]", value) if part.strip()]
        return value

    def date(self, name: str) -> dt.date | None:
        value = self.row.values.get(self.key(name))
        if isinstance(value, dt.datetime):
            value = value.date()
        elif not isinstance(value, dt.date):
            text = self.get(name)
            if not isinstance(text, str) or not text.strip():
                return None
            for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
                try:
                    value = dt.datetime.strptime(text.strip(), pattern).date()
                    break
                except ValueError:
                    continue
            else:
                self.fail(name, f"{text.strip()!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31")
                return None
        if not workflow.EARLIEST_DATE <= value <= workflow.LATEST_DATE:
            self.fail(
                name, f"must be between {workflow.EARLIEST_DATE:%Y} and {workflow.LATEST_DATE:%Y}, got {value:%Y-%m-%d}"
            )
            return None
        return value

    def interval(self, name: str) -> int:
        default = settings.DEFAULT_REVIEW_INTERVAL_DAYS
        text = self.get(name)
        if not isinstance(text, str) or not text.strip():
            return default
        if not text.strip().isdigit():
            self.fail(name, f"{text.strip()!r} is not a whole number of days")
            return default
        days = int(text)
        if not 1 <= days <= MAX_INTERVAL_DAYS:
            self.fail(name, f"must be between 1 and {MAX_INTERVAL_DAYS} days, got {days}")
            return default
        return days


class _Owners:
    """Who the file may name as owners: ``permissions.eligible_owners``, and no one else."""

    def __init__(self, organisation_id: int) -> None:
        # The names too: the timeline records each owner by name (str(user)), and a deferred field would
        # cost a query per owner.
        people = User.objects.filter(organisation_id=organisation_id).only(
            "pk", "username", "email", "is_active", "first_name", "last_name"
        )
        self.by_username = {u.username.lower(): u for u in people}
        self.by_email = {u.email.lower(): u for u in people if u.email}
        self.eligible = set(permissions.eligible_owners(organisation_id).values_list("pk", flat=True))

    def find(self, text: str, what: str) -> tuple[User | None, str]:
        """The eligible person called ``text`` (username or email), or why not: for plan actions and measures,
        whose owners and suppliers are held to the same rule as a recommendation's owner."""
        person = self.by_username.get(text.lower()) or self.by_email.get(text.lower())
        if person is None:
            return None, f"nobody called {text!r} in your organisation"
        if person.pk not in self.eligible:
            if not person.is_active:
                return None, f"{text!r} is no longer active and cannot {what}"
            return None, f"{text!r} cannot {what}: only owners and governance leads can"
        return person, ""

    def check(self, cells: _Cells) -> User | None:
        text = cells.get("owner")
        if not isinstance(text, str) or not text.strip():
            return None
        text = text.strip()
        owner = self.by_username.get(text.lower()) or self.by_email.get(text.lower())
        if owner is None:
            cells.fail("owner", f"nobody called {text!r} in your organisation")
        elif owner.pk not in self.eligible:
            if not owner.is_active:
                cells.fail("owner", f"{text!r} is no longer active and cannot own a recommendation")
            else:
                cells.fail(
                    "owner", f"{text!r} cannot own a recommendation: owners have the Owner or Governance lead role"
                )
            return None
        return owner


# --- The optional plan and measure columns (issue 16) ------------------------------------------
#
# One item per line of the cell, its parts separated by "|": exactly what an export writes.
#   Action plan:          description | owner (username or email) | due date
#   Measure definitions:  name | definition | unit | higher or lower | baseline | baseline period |
#                         target | target date | monthly or quarterly | supplier (username or email)
# A missing column or a blank cell adds nothing. Each item is held to the workflow's own rules
# (``add_plan_action``, ``add_measure``); a bad line is reported as "row N, column X: line L: ...".

ACTION_PARTS = ("description", "owner", "due date")
MEASURE_PARTS = ("name", "definition", "unit", "direction", "baseline", "baseline period", "target", "target date")
MEASURE_PARTS += ("frequency", "supplier")
MAX_ITEMS_PER_ROW = 200  # lines per cell: a plan longer than this is a project of its own


def _item_date(text: str, label: str) -> dt.date:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return workflow._plan_date(dt.datetime.strptime(text, pattern).date(), label)
        except ValueError:
            continue
    raise InvalidInput(f"the {label} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31")


def _item_lines(cells: _Cells, name: str, parts: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    text = cells.get(name)
    if not isinstance(text, str) or not text.strip():
        return []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) > MAX_ITEMS_PER_ROW:
        cells.fail(name, f"has {len(lines)} lines; the limit is {MAX_ITEMS_PER_ROW} a row")
        return []
    result = []
    for number, line in lines:
        values = [value.strip() for value in line.split("|")]
        if len(values) != len(parts):
            cells.fail(
                name,
                f"line {number}: has {len(values)} part{'s' if len(values) != 1 else ''}; write "
                f"{len(parts)}, separated by |: {' | '.join(parts)}",
            )
            continue
        result.append((number, values))
    return result


def _check_actions(cells: _Cells, owners: _Owners) -> list[PlannedAction]:
    planned = []
    for number, (description, who, due) in _item_lines(cells, "action_plan", ACTION_PARTS):
        try:
            description = workflow._text(description, PlanAction, "description", "The action", "Say what will be done.")
            owner, why = owners.find(who, "own an action") if who else (None, "say who owns the action")
            if owner is None:
                raise InvalidInput(why)
            planned.append(PlannedAction(description, owner, _item_date(due, "due date")))
        except InvalidInput as exc:
            cells.fail("action_plan", f"line {number}: {exc}")
    return planned


def _check_measures(cells: _Cells, owners: _Owners) -> list[PlannedMeasure]:
    planned: list[PlannedMeasure] = []
    names: set[str] = set()
    for number, values in _item_lines(cells, "measure_definitions", MEASURE_PARTS):
        name, definition, unit, direction, baseline, since, target, by_date, frequency, who = values
        try:
            name = workflow._text(name, OutcomeMeasure, "name", "The name", "Give the measure a name.")
            if name in names:
                raise InvalidInput(f"a second measure called {name!r}; each needs its own name")
            definition = workflow._text(
                definition, OutcomeMeasure, "definition", "The definition", "Say how the measure is counted."
            )
            unit = workflow._text(unit, OutcomeMeasure, "unit", "The unit")
            direction, frequency = direction.lower(), frequency.lower()
            if direction not in OutcomeMeasure.Direction.values:
                raise InvalidInput(f"the direction {direction!r} is not one of: higher, lower")
            if frequency not in OutcomeMeasure.Frequency.values:
                raise InvalidInput(f"the frequency {frequency!r} is not one of: monthly, quarterly")
            supplier, why = owners.find(who, "supply a measure's data") if who else (None, "say who supplies the data")
            if supplier is None:
                raise InvalidInput(why)
            measure = PlannedMeasure(
                name=name,
                definition=definition,
                unit=unit,
                direction=direction,
                baseline_value=workflow._decimal(baseline, "baseline"),
                baseline_period=outcomes.period_start(_item_date(since, "baseline period"), frequency),
                target_value=workflow._decimal(target, "target"),
                target_date=_item_date(by_date, "target date"),
                frequency=frequency,
                supplier=supplier,
            )
        except InvalidInput as exc:
            cells.fail("measure_definitions", f"line {number}: {exc}")
            continue
        names.add(name)
        planned.append(measure)
    return planned


def _seeded_slugs() -> dict[tuple[str, str], str]:
    """(organisation, inspection) slugs defined in seeds/: loaded by seed_findings, never imported."""
    slugs = {}
    for path in default_paths():
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            slugs[(document["organisation"]["slug"], document["inspection"]["slug"])] = path.name
        except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
            continue  # a broken seed file is seed_findings' problem to report
    return slugs


CHECKED_EVERY = 1000  # rows between reports of progress while checking


def plan(rows: list[Row], *, organisation_id: int, progress: Progress | None = None) -> list[PlannedInspection]:
    """Check every row against the database; raise ImportFailed listing every problem."""
    problems: list[Problem] = []
    themes = {theme.slug: theme for theme in Theme.objects.all()}
    owners = _Owners(organisation_id)
    inspections: dict[str, PlannedInspection] = {}
    references: dict[tuple[str, str], str] = {}

    for done, row in enumerate(rows):
        if progress is not None and done and done % CHECKED_EVERY == 0:
            progress.checked(done)
        cells = _Cells(row, problems, INSPECTION_COLUMNS)
        details = rules.check_inspection(cells)
        slug = details.slug
        if slug and slug not in inspections:
            inspections[slug] = PlannedInspection(row.number, details)
        elif slug:
            first = inspections[slug]
            for name in ("title", "inspectorate", "programme", "published_text"):
                mine, theirs = getattr(details, name), getattr(first.values, name)
                if mine and theirs and mine != theirs:
                    cells.fail(name, f"differs from row {first.row} for the same inspection {slug!r}")

        cells = _Cells(row, problems)
        finding = rules.check_finding(cells, known_themes=themes)
        rules.check_tracked_kind(cells, finding.kind)
        # Without the column, nothing imported is labelled as the inspectorate's own words.
        source_kind = (
            rules.choice(cells, "source_kind", SourceKind)
            if cells.get("source_kind") not in (None, "")
            else SourceKind.THIRD_PARTY_SUMMARY
        )
        rules.check_unique_reference(
            cells, finding.reference, inspection=slug, seen=references, here=f"row {row.number}"
        )
        owner = owners.check(cells)
        planned = PlannedRecommendation(
            row=row.number,
            finding=finding,
            themes=[themes[name] for name in finding.themes],
            owner=owner,
            target_date=cells.date("target_date"),
            interval=cells.interval("review_interval_days"),
            source_kind=source_kind,
            actions=_check_actions(cells, owners),
            measures=_check_measures(cells, owners),
        )
        if slug:
            inspections[slug].recommendations.append(planned)

    # Only this organisation's inspections: another's slugs are none of its business.
    existing = set(
        Inspection.objects.filter(organisation_id=organisation_id, slug__in=inspections).values_list("slug", flat=True)
    )
    organisation_slug = Organisation.objects.filter(pk=organisation_id).values_list("slug", flat=True).first()
    seeded = _seeded_slugs()
    for slug, planned in inspections.items():
        if slug in existing:
            problems.append(
                Problem(
                    planned.row,
                    HEADERS["inspection"],
                    f"inspection {slug!r} already exists; an import only creates new inspections",
                )
            )
        elif (organisation_slug, slug) in seeded:
            problems.append(
                Problem(
                    planned.row,
                    HEADERS["inspection"],
                    f"inspection {slug!r} is defined in seeds/{seeded[(organisation_slug, slug)]}; "
                    "load it with seed_findings",
                )
            )
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise ImportFailed(problems)
    return list(inspections.values())


# --- Loading -----------------------------------------------------------------------------------


def import_recommendations(
    content: bytes, *, by: User, filename: str = "", dry_run: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Check the whole file, then create its inspections and recommendations in one transaction.

    A dry run stops after the checks: it reports what would be imported and writes nothing.
    """
    if not permissions.may_create_recommendations(by, by.organisation_id):
        raise permissions.NotPermitted("Only a governance lead can import recommendations.")
    progress = progress or Progress()
    rows = read_rows(content, filename)
    progress.read(len(rows))
    planned = plan(rows, organisation_id=by.organisation_id, progress=progress)
    progress.checked(len(rows))
    report = ImportReport(
        inspections=[item.slug for item in planned],
        recommendations=[f"{item.slug} {row.reference}" for item in planned for row in item.recommendations],
    )
    if dry_run:
        return report
    name = Path(filename).name or "an uploaded file"
    progress.saving()
    try:
        with transaction.atomic():
            _load(planned, by=by, source=name)
            progress.saved(report)
            AccessLog.objects.create(
                user=by,
                action=AccessLog.Action.IMPORT,
                object_repr=f"{report.rows} recommendations from {name}"[:300],
                detail={"filename": name, "inspections": report.inspections, "rows": report.rows},
            )
    except (workflow.WorkflowError, permissions.NotPermitted, IntegrityError) as exc:
        # Checked above, so only a change made by someone else in the meantime gets here.
        raise ImportFailed([Problem(None, "", f"could not be saved: {exc}")]) from None
    return report


def _load(planned: list[PlannedInspection], *, by: User, source: str) -> None:
    """Write what ``plan`` checked, a batch of rows per INSERT.

    This is what ``workflow.create_recommendation``, ``assign_owner`` and ``change_target_date`` would
    do row by row (the same rows and timeline events), with their rules asked once for the whole file
    rather than once per row: at 30 queries a row, 10,000 rows took minutes. History differs in one way:
    each row gets one creation record holding its final state (version 1), not one record per step.
    """
    organisation_id = by.organisation_id
    if not permissions.may_create_recommendations(by, organisation_id):
        raise permissions.NotPermitted("Only a governance lead of this organisation can create recommendations.")
    rows = [row for item in planned for row in item.recommendations]
    _recheck(rows, organisation_id)
    reason = f"Imported from {source}"[: RecommendationEvent._meta.get_field("reason").max_length]
    history = {"default_user": by, "default_change_reason": reason[:100]}
    now = timezone.now()
    today = timezone.localdate()

    inspections = bulk_create_with_history(
        [
            Inspection(
                organisation_id=organisation_id,
                slug=item.slug,
                inspectorate=item.values.inspectorate,
                programme=item.values.programme,
                title=item.values.title,
                published_text=item.values.published_text,
                tracked=True,
            )
            for item in planned
        ],
        Inspection,
        batch_size=BATCH,
        **history,
    )
    findings = [
        Finding(
            inspection=inspection,
            reference=row.finding.reference,
            kind=row.finding.kind,
            title=row.finding.title,
            summary=row.finding.summary,
        )
        for inspection, item in zip(inspections, planned, strict=True)
        for row in item.recommendations
    ]
    Finding.objects.bulk_create(findings, batch_size=BATCH)
    _need_ids(findings)
    _create_quotations(findings, rows, history)
    finding_history = Finding.history.bulk_history_create(findings, batch_size=BATCH, **history)
    _need_ids(finding_history)
    links = [
        Finding.themes.through(finding_id=finding.pk, theme_id=theme.pk)
        for finding, row in zip(findings, rows, strict=True)
        for theme in row.themes
    ]
    Finding.themes.through.objects.bulk_create(links, batch_size=BATCH)
    _need_ids(links)
    # The themes as they were at creation, beside the finding's first history record.
    historical_links = apps.get_model(Finding._meta.app_label, f"{Finding.history.model.__name__}_themes")
    history_of = {record.id: record for record in finding_history}
    historical_links.objects.bulk_create(
        [
            historical_links(
                id=link.pk, finding_id=link.finding_id, theme_id=link.theme_id, history=history_of[link.finding_id]
            )
            for link in links
        ],
        batch_size=BATCH,
    )

    recommendations = [
        Recommendation(
            finding=finding,
            organisation_id=organisation_id,
            title=row.finding.title,
            outcome_measure=row.finding.outcome_measure,
            review_interval_days=row.interval,
            next_review_due=today + dt.timedelta(days=row.interval),
            owner=row.owner,
            target_date=row.target_date,
            version=1,
        )
        for finding, row in zip(findings, rows, strict=True)
    ]
    recommendations = bulk_create_with_history(recommendations, Recommendation, batch_size=BATCH, **history)
    _need_ids(recommendations)

    events = []
    assignments = []  # (event, recommendation, owner): the new owners are told, as the workflow tells them
    for rec, row in zip(recommendations, rows, strict=True):
        events.append(RecommendationEvent(recommendation=rec, action=Event.CREATED, actor=by, at=now, reason=reason))
        if row.owner is not None:
            assigned = RecommendationEvent(
                recommendation=rec,
                action=Event.OWNER_CHANGED,
                actor=by,
                at=now,
                old_value="nobody",
                new_value=str(row.owner)[:200],
                reason=reason,
            )
            events.append(assigned)
            assignments.append((assigned, rec, row.owner))
        if row.target_date is not None:
            events.append(
                RecommendationEvent(
                    recommendation=rec,
                    action=Event.TARGET_DATE_CHANGED,
                    actor=by,
                    at=now,
                    old_value="none",
                    new_value=str(row.target_date),
                    reason=reason,
                )
            )
    events += _create_plans(recommendations, rows, by=by, at=now, reason=reason, history=history)
    RecommendationEvent.objects.bulk_create(events, batch_size=BATCH)
    notifications.notify_assigned(assignments)


def _create_plans(
    recommendations: list[Recommendation],
    rows: list[PlannedRecommendation],
    *,
    by: User,
    at: dt.datetime,
    reason: str,
    history: dict,
) -> list[RecommendationEvent]:
    """The optional columns' plan actions and measures, a batch per INSERT with their history, and the
    timeline events ``workflow.add_plan_action`` and ``add_measure`` would record (returned, to be written
    with the others). Nothing at all when the file has neither column."""
    actions = [
        PlanAction(recommendation=rec, description=item.description, owner=item.owner, due_date=item.due_date)
        for rec, row in zip(recommendations, rows, strict=True)
        for item in row.actions
    ]
    measures = [
        OutcomeMeasure(
            recommendation=rec,
            name=item.name,
            definition=item.definition,
            unit=item.unit,
            direction=item.direction,
            baseline_value=item.baseline_value,
            baseline_period=item.baseline_period,
            target_value=item.target_value,
            target_date=item.target_date,
            frequency=item.frequency,
            supplier=item.supplier,
        )
        for rec, row in zip(recommendations, rows, strict=True)
        for item in row.measures
    ]
    events = []
    if actions:
        bulk_create_with_history(actions, PlanAction, batch_size=BATCH, **history)
        events += [
            RecommendationEvent(
                recommendation=item.recommendation,
                action=Event.PLAN_ACTION_ADDED,
                actor=by,
                at=at,
                new_value=f"{item.description[:150]} (due {item.due_date:%-d %b %Y})",
                reason=reason,
            )
            for item in actions
        ]
    if measures:
        bulk_create_with_history(measures, OutcomeMeasure, batch_size=BATCH, **history)
        events += [
            RecommendationEvent(
                recommendation=item.recommendation,
                action=Event.MEASURE_ADDED,
                actor=by,
                at=at,
                new_value=f"{item.name[:120]}: target {outcomes.target_text(item)}",
                reason=reason,
            )
            for item in measures
        ]
    return events


def _create_quotations(findings: list[Finding], rows: list[PlannedRecommendation], history: dict) -> None:
    """One source per title within each inspection (its key made from the title), and each finding's
    quotation from it. The first row naming a source decides its kind."""
    sources: dict[tuple[int, str], Source] = {}
    keys: dict[int, set[str]] = {}
    for finding, row in zip(findings, rows, strict=True):
        title = row.finding.source_title
        if (finding.inspection_id, title) in sources:
            continue
        taken = keys.setdefault(finding.inspection_id, set())
        base = slugify(title)[:90] or "source"
        key, n = base, 1
        while key in taken:
            n += 1
            key = f"{base}-{n}"
        taken.add(key)
        sources[(finding.inspection_id, title)] = Source(
            inspection_id=finding.inspection_id, key=key, title=title, kind=row.source_kind
        )
    created = bulk_create_with_history(list(sources.values()), Source, batch_size=BATCH, **history)
    _need_ids(created)
    quotations = [
        Quotation(
            finding=finding,
            source=sources[(finding.inspection_id, row.finding.source_title)],
            position=1,
            text=row.finding.quote,
            location=row.finding.quotations[0].location,
        )
        for finding, row in zip(findings, rows, strict=True)
    ]
    bulk_create_with_history(quotations, Quotation, batch_size=BATCH, **history)


def _recheck(rows: list[PlannedRecommendation], organisation_id: int) -> None:
    """The workflow's rules for the whole batch, asked again inside the transaction that writes it.

    ``plan`` checked each row as it read it; an owner may have been deactivated since, and a caller
    that builds its own plan must not get past the bounds the workflow enforces.
    """
    named = {row.owner.pk for row in rows if row.owner is not None}
    named |= {item.owner.pk for row in rows for item in row.actions}
    named |= {item.supplier.pk for row in rows for item in row.measures}
    eligible = set(permissions.eligible_owners(organisation_id).values_list("pk", flat=True)) if named else set()
    problems = []
    for row in rows:
        people = [(item.owner, "action_plan") for item in row.actions]
        people += [(item.supplier, "measure_definitions") for item in row.measures]
        for person, column in people:
            if person.pk not in eligible:
                problems.append(
                    Problem(
                        row.row,
                        HEADERS[column],
                        f"{person.username!r} can no longer own an action or supply a measure's data: only active "
                        "owners and governance leads can",
                    )
                )
        if row.owner is not None and row.owner.pk not in eligible:
            problems.append(
                Problem(
                    row.row,
                    HEADERS["owner"],
                    f"{row.owner.username!r} cannot own a recommendation: owners are active and have the Owner "
                    "or Governance lead role",
                )
            )
        if isinstance(row.interval, bool) or not 1 <= row.interval <= MAX_INTERVAL_DAYS:
            problems.append(
                Problem(row.row, HEADERS["review_interval_days"], f"must be between 1 and {MAX_INTERVAL_DAYS} days")
            )
        if row.target_date is not None and not workflow.EARLIEST_DATE <= row.target_date <= workflow.LATEST_DATE:
            problems.append(
                Problem(
                    row.row,
                    HEADERS["target_date"],
                    f"must be between {workflow.EARLIEST_DATE:%Y} and {workflow.LATEST_DATE:%Y}",
                )
            )
    if problems:
        raise ImportFailed(problems)


def _need_ids(objects: list) -> None:
    # PostgreSQL and SQLite 3.35+ return the new ids from a bulk INSERT; the events and history need them.
    if objects and any(obj.pk is None for obj in objects):
        raise RuntimeError("This database does not return ids from a bulk insert; imports need one that does.")


def problems_text(problems: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in problems)
