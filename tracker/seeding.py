"""Parse, validate and load the structured findings files in ``seeds/``.

Loading is idempotent (a second run changes nothing), never touches what staff own (owner,
status, dates, updates, evidence), and is all-or-nothing: every file is validated before anything
is written, and the writes happen in one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from tracker.models import (
    Finding,
    Grade,
    Inspection,
    Judgement,
    Organisation,
    Recommendation,
    Theme,
)
from tracker.workflow import create_recommendation

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REFERENCE = re.compile(r"^[A-Z]{1,6}[0-9]{1,3}[a-z]?$")
SEED_CHANGE_REASON = "Seed file changed"


class SeedError(Exception):
    """One or more problems in the seed files; the message lists each with its place."""


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.path}, line {self.line}" if self.line else self.path
        if self.where:
            place += f" ({self.where})"
        return f"{place}: {self.message}"


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


# --- Parsing, keeping line numbers -------------------------------------------------------------


class _Node(dict):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    mapping = _Node()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} appears twice", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError for 2025-13-45; keep the text so validation can name it.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return node.value


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


@dataclass
class ParsedFile:
    path: str
    organisation: dict
    inspection: dict
    themes: dict[str, str]
    judgements: list[dict]
    findings: list[dict]
    sources: dict[str, dict]


class _Checker:
    """Collects problems for one file so that a user sees all of them at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def fail(self, node: Any, where: str, message: str) -> None:
        self.problems.append(Problem(self.path, getattr(node, "line", None), where, message))

    def mapping(self, node: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> bool:
        if not isinstance(node, dict):
            self.fail(node, where, "expected a mapping of keys to values")
            return False
        for key in sorted(required - node.keys()):
            self.fail(node, where, f"missing field '{key}'")
        for key in sorted(node.keys() - required - optional, key=str):
            self.fail(node, where, f"unknown field '{key}' (allowed: {', '.join(sorted(required | optional))})")
        return required <= node.keys()

    def text(self, node: dict, key: str, where: str, max_length: int, allow_empty: bool = False) -> str:
        value = node.get(key)
        if value is None and allow_empty:
            return ""
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            self.fail(node, where, f"'{key}' must be text and not empty")
            return ""
        if len(value) > max_length:
            self.fail(node, where, f"'{key}' is {len(value)} characters long; the limit is {max_length}")
        return value.strip()

    def choice(self, node: dict, key: str, where: str, choices: list[str]) -> str:
        value = node.get(key)
        if value not in choices:
            self.fail(node, where, f"unknown {key} {value!r} (expected one of: {', '.join(choices)})")
        return value

    def slug(self, node: dict, key: str, where: str) -> str:
        value = node.get(key)
        if not isinstance(value, str) or not SLUG.match(value):
            self.fail(node, where, f"'{key}' must be lowercase letters, digits and hyphens, got {value!r}")
        return value


def parse_file(path: Path) -> tuple[ParsedFile | None, list[Problem]]:
    shown = display_path(path)
    check = _Checker(shown)
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [Problem(shown, None, "", "the file is not UTF-8 text")]
    except OSError as exc:
        return None, [Problem(shown, None, "", f"cannot be read: {exc.strerror}")]
    try:
        document = yaml.load(raw, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(shown, line, "", f"not valid YAML: {problem}")]

    top = {"organisation", "inspection", "sources", "themes", "findings"}
    if not check.mapping(document, "file", top, {"judgements"}):
        return None, check.problems

    org = document["organisation"]
    if check.mapping(org, "organisation", {"slug", "name", "kind"}):
        check.slug(org, "slug", "organisation")
        check.text(org, "name", "organisation", 200)
        check.choice(org, "kind", "organisation", Organisation.Kind.values)

    insp = document["inspection"]
    if check.mapping(
        insp,
        "inspection",
        {"slug", "inspectorate", "programme", "title"},
        {"published", "published_text", "url", "tracked"},
    ):
        check.slug(insp, "slug", "inspection")
        check.choice(insp, "inspectorate", "inspection", Inspection.Inspectorate.values)
        check.text(insp, "programme", "inspection", 200)
        check.text(insp, "title", "inspection", 300)
        published = insp.get("published")
        if published is not None and not (isinstance(published, dt.date) and not isinstance(published, dt.datetime)):
            check.fail(insp, "inspection", f"'published' must be a date written YYYY-MM-DD, or null; got {published!r}")
        check.text(insp, "published_text", "inspection", 100, allow_empty=True)
        url = insp.get("url") or ""
        if url:
            try:
                URLValidator()(url)
            except (ValidationError, TypeError):
                check.fail(insp, "inspection", f"'url' is not a valid web address: {url!r}")
        if not isinstance(insp.get("tracked", True), bool):
            check.fail(insp, "inspection", "'tracked' must be true or false")

    sources: dict[str, dict] = {}
    if not isinstance(document["sources"], list) or not document["sources"]:
        check.fail(document, "sources", "'sources' must be a non-empty list")
    else:
        for source in document["sources"]:
            if check.mapping(source, "source", {"key", "title"}, {"reference"}):
                key = check.slug(source, "key", "source")
                if key in sources:
                    check.fail(source, f"source {key}", "this source key is used twice")
                sources[key] = source

    themes = document["themes"]
    if not isinstance(themes, dict):
        check.fail(document, "themes", "'themes' must map a theme slug to its name")
        themes = {}
    for slug, name in themes.items():
        if not isinstance(slug, str) or not SLUG.match(slug) or not isinstance(name, str) or not name.strip():
            check.fail(themes, "themes", f"theme {slug!r} needs a lowercase-hyphen slug and a name")

    judgements = document.get("judgements") or []
    if not isinstance(judgements, list):
        check.fail(document, "judgements", "'judgements' must be a list")
        judgements = []
    areas: set[str] = set()
    for judgement in judgements:
        if check.mapping(judgement, "judgement", {"area", "grade"}, {"source"}):
            area = check.text(judgement, "area", "judgement", 300)
            check.choice(judgement, "grade", f"judgement {area}", Grade.values)
            if area in areas:
                check.fail(judgement, f"judgement {area}", "this area is graded twice")
            areas.add(area)

    findings = document["findings"]
    if not isinstance(findings, list) or not findings:
        check.fail(document, "findings", "'findings' must be a non-empty list")
        findings = []
    references: set[str] = set()
    finding_fields = {"reference", "kind", "title", "summary", "quote", "source", "location", "themes"}
    for finding in findings:
        reference = finding.get("reference") if isinstance(finding, dict) else None
        where = f"finding {reference}" if reference else "finding"
        if not check.mapping(finding, where, finding_fields, {"outcome_measure"}):
            continue
        if not isinstance(reference, str) or not REFERENCE.match(reference):
            check.fail(finding, where, f"'reference' must look like CC1 or AFI12, got {reference!r}")
        elif reference in references:
            check.fail(finding, where, "duplicate reference: each reference may appear once in a file")
        references.add(reference)
        check.choice(finding, "kind", where, Finding.Kind.values)
        check.text(finding, "title", where, 200)
        check.text(finding, "summary", where, 2000)
        check.text(finding, "quote", where, 600)
        check.text(finding, "location", where, 100)
        check.text(finding, "outcome_measure", where, 2000, allow_empty=True)
        if finding["source"] not in sources:
            check.fail(
                finding, where, f"unknown source {finding['source']!r} (declared: {', '.join(sources) or 'none'})"
            )
        if not isinstance(finding["themes"], list) or not finding["themes"]:
            check.fail(finding, where, "'themes' must be a non-empty list of theme slugs")
        else:
            for slug in finding["themes"]:
                if slug not in themes:
                    check.fail(finding, where, f"unknown theme {slug!r}: declare it under 'themes' first")

    if check.problems:
        return None, check.problems
    return ParsedFile(shown, org, insp, themes, judgements, findings, sources), []


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)


def default_paths() -> list[Path]:
    return sorted(Path(settings.BASE_DIR, "seeds").glob("*.y*ml"))


def parse_all(paths: list[Path]) -> list[ParsedFile]:
    parsed: list[ParsedFile] = []
    problems: list[Problem] = []
    for path in paths:
        result, found = parse_file(Path(path))
        problems.extend(found)
        if result:
            parsed.append(result)
    seen: dict[str, str] = {}
    for item in parsed:
        slug = item.inspection["slug"]
        if slug in seen:
            problems.append(
                Problem(item.path, item.inspection.line, "inspection", f"inspection '{slug}' is also in {seen[slug]}")
            )
        seen[slug] = item.path
    if problems:
        raise SeedError("\n".join(str(p) for p in problems))
    return parsed


# --- Loading -----------------------------------------------------------------------------------


def seed(paths: list[Path] | None = None, *, dry_run: bool = False) -> SeedReport:
    """Validate every file, then load all of them in one transaction (rolled back on a dry run)."""
    files = parse_all(paths if paths is not None else default_paths())
    report = SeedReport()
    with transaction.atomic():
        for item in files:
            _load(item, report)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _sync(obj: Any, values: dict[str, Any], report: SeedReport, label: str) -> None:
    """Update the given fields if the file says otherwise, with history naming the seed file."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if not changed:
        return
    for name in changed:
        setattr(obj, name, values[name])
    obj._change_reason = SEED_CHANGE_REASON
    obj.save(update_fields=changed)
    report.updated.append(f"{label}: {', '.join(changed)}")


def _load(item: ParsedFile, report: SeedReport) -> None:
    org_data = item.organisation
    org, created = Organisation.objects.get_or_create(
        slug=org_data["slug"], defaults={"name": org_data["name"], "kind": org_data["kind"]}
    )
    if created:
        report.created.append(f"organisation {org.name}")
    else:
        _sync(org, {"name": org_data["name"], "kind": org_data["kind"]}, report, f"organisation {org.slug}")

    themes: dict[str, Theme] = {}
    for slug, name in item.themes.items():
        theme, created = Theme.objects.get_or_create(slug=slug, defaults={"name": name.strip()})
        if created:
            report.created.append(f"theme {name}")
        themes[slug] = theme

    data = item.inspection
    values = {
        "organisation": org,
        "inspectorate": data["inspectorate"],
        "programme": data["programme"].strip(),
        "title": data["title"].strip(),
        "published": data.get("published"),
        "published_text": (data.get("published_text") or "").strip(),
        "url": data.get("url") or "",
        "tracked": data.get("tracked", True),
    }
    inspection = Inspection.objects.filter(slug=data["slug"]).first()
    if inspection is None:
        inspection = Inspection.objects.create(slug=data["slug"], **values)
        report.created.append(f"inspection {inspection.title}")
    elif inspection.organisation_id != org.pk:
        raise SeedError(f"{item.path}: inspection '{data['slug']}' already belongs to another organisation")
    else:
        _sync(inspection, values, report, f"inspection {inspection.slug}")

    for judgement_data in item.judgements:
        judgement, created = Judgement.objects.get_or_create(
            inspection=inspection, area=judgement_data["area"].strip(), defaults={"grade": judgement_data["grade"]}
        )
        if created:
            report.created.append(f"judgement {judgement}")
        else:
            _sync(judgement, {"grade": judgement_data["grade"]}, report, f"judgement {judgement.area}")

    existing = {f.reference: f for f in inspection.findings.prefetch_related("themes").select_related("recommendation")}
    listed: set[str] = set()
    interval = settings.DEFAULT_REVIEW_INTERVAL_DAYS
    for data in item.findings:
        source = item.sources[data["source"]]
        values = {
            "kind": data["kind"],
            "title": data["title"].strip(),
            "summary": data["summary"].strip(),
            "quote": data["quote"].strip(),
            "source_title": source["title"].strip(),
            "source_reference": (source.get("reference") or "").strip(),
            "source_location": data["location"].strip(),
        }
        reference = data["reference"]
        listed.add(reference)
        finding = existing.get(reference)
        label = f"finding {inspection.slug} {reference}"
        if finding is None:
            finding = Finding.objects.create(inspection=inspection, reference=reference, **values)
            report.created.append(label)
        else:
            _sync(finding, values, report, label)
        wanted = {themes[slug].pk for slug in data["themes"]}
        if {t.pk for t in finding.themes.all()} != wanted:
            finding._change_reason = SEED_CHANGE_REASON
            finding.themes.set(wanted)
            if finding.pk in {f.pk for f in existing.values()}:
                report.updated.append(f"{label}: themes")

        if inspection.tracked and not Recommendation.objects.filter(finding=finding).exists():
            # Created once; from then on the recommendation belongs to staff and is never overwritten.
            create_recommendation(
                finding,
                by=None,
                interval_days=interval,
                title=values["title"],
                outcome_measure=(data.get("outcome_measure") or "").strip(),
                reason=f"Seeded from {item.path}",
            )
            report.created.append(f"recommendation {inspection.slug} {reference}")

    for reference in sorted(existing.keys() - listed):
        report.notes.append(
            f"{item.path}: finding {reference} is in the database but no longer in the file; it was left as it is"
        )
