"""Parse, validate and load the structured findings files in ``seeds/``.

Loading is idempotent (a second run changes nothing), never touches what staff own (owner,
status, dates, updates, evidence), and is all-or-nothing: every file is validated before anything
is written, and the writes happen in one transaction.

What each record must be is ``tracker.finding_rules`` (imports ask it too); this module reads the
YAML, keeps the line of every value, and reports each problem as "file:line place, field 'x': message".
What no single file shows (two files disagreeing, a name the database already gives another
organisation) is checked across the files before loading, so loading never meets a database error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import DatabaseError, transaction

from tracker import finding_rules as rules
from tracker import sources as excerpts
from tracker.errors import WorkflowError
from tracker.models import (
    Finding,
    Inspection,
    Judgement,
    Organisation,
    Quotation,
    Recommendation,
    Source,
    Theme,
)
from tracker.workflow import create_recommendation

SEED_CHANGE_REASON = "Seed file changed"


class SeedError(Exception):
    """One or more problems in the seed files; the message lists each with its place."""


@dataclass(frozen=True)
class Problem:
    """Reported as "file:line where, field 'x': message", leaving out the parts that are not known."""

    path: str
    line: int | None
    where: str
    message: str
    field: str = ""

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" if self.line else self.path
        if self.where and self.field:
            place += f" {self.where}, field '{self.field}'"
        elif self.where or self.field:
            place += f" {self.where or 'field ' + repr(self.field)}"
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
    """A YAML mapping that knows its own line and the line of each of its values."""

    line: int = 0
    lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    mapping = _Node()
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in mapping
        except TypeError:  # a list or mapping used as a key
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain word, not a list or mapping", key_node.start_mark
            ) from None
        if seen:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} appears twice", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = value_node.start_mark.line + 1
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
class SeedInspection:
    values: rules.InspectionValues
    published: dt.date | None
    url: str
    tracked: bool
    line: int
    joint_inspectorates: str = ""


@dataclass
class SeedSource:
    values: rules.SourceValues
    published: dt.date | None
    excerpt: str  # the repository file holding the words quoted from it; never shown to users


@dataclass
class ParsedFile:
    path: str
    organisation: rules.OrganisationValues
    organisation_line: int
    inspection: SeedInspection
    themes: list[rules.ThemeValues]
    judgements: list[rules.JudgementValues]
    findings: list[rules.FindingValues]
    sources: list[SeedSource] = field(default_factory=list)


class _Checker:
    """Collects problems for one file so that a user sees all of them at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def fail(self, node: Any, where: str, message: str, key: str = "") -> None:
        lines = getattr(node, "lines", {})
        line = lines.get(key) if key else None
        self.problems.append(Problem(self.path, line or getattr(node, "line", None), where, message, key))

    def mapping(self, node: Any, where: str, required: set[str], optional: set[str] = frozenset()) -> bool:
        if not isinstance(node, dict):
            self.fail(node, where, "expected a mapping of keys to values")
            return False
        for key in sorted(required - node.keys()):
            self.fail(node, where, f"missing field '{key}'")
        for key in sorted(node.keys() - required - optional, key=str):
            self.fail(node, where, f"unknown field '{key}' (allowed: {', '.join(sorted(required | optional))})")
        return required <= node.keys()

    def fields(self, node: Mapping, where: str, keys: Mapping[str, str] | None = None) -> _Fields:
        return _Fields(self, node, where, keys or {})


class _Fields:
    """One YAML mapping as ``finding_rules`` reads it; ``keys`` maps a rule's name to the file's key."""

    def __init__(self, check: _Checker, node: Mapping, where: str, keys: Mapping[str, str]) -> None:
        self.check, self.node, self.where, self.keys = check, node, where, keys

    def get(self, name: str) -> object:
        return self.node.get(self.keys.get(name, name))

    def fail(self, name: str, message: str) -> None:
        self.check.fail(self.node, self.where, message, self.keys.get(name, name))


class _Entry(dict):
    """A ``slug: name`` line of the 'themes' mapping, checked like any other record."""

    def __init__(self, themes: Any, slug: Any) -> None:
        super().__init__(slug=slug, name=themes[slug])
        line = getattr(themes, "lines", {}).get(slug)
        self.line = line
        self.lines = {"slug": line, "name": line}


# An older file gives one quotation per finding as quote, source and location (read as ``quotes``).
LEGACY_QUOTE_KEYS = {"text": "quote", "source": "source", "location": "location"}
SOURCE_FIELDS = {"kind", "publisher", "published", "published_text", "url", "excerpt", "reference"}


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
    organisation = None
    if check.mapping(org, "organisation", {"slug", "name", "kind"}):
        organisation = rules.check_organisation(check.fields(org, "organisation"))

    insp = document["inspection"]
    inspection = None
    if check.mapping(
        insp,
        "inspection",
        {"slug", "inspectorate", "programme", "title"},
        {"published", "published_text", "url", "tracked", "joint_inspectorates"},
    ):
        inspection = _check_inspection(check, insp)

    sources: dict[str, SeedSource] = {}
    if not isinstance(document["sources"], list) or not document["sources"]:
        check.fail(document, "sources", "'sources' must be a non-empty list", "sources")
    else:
        for node in document["sources"]:
            if check.mapping(node, "source", {"key", "title"}, SOURCE_FIELDS):
                source = _check_source(check, node)
                if source.values.key in sources:
                    check.fail(node, f"source {source.values.key}", "this source key is used twice", "key")
                if source.values.key:
                    sources[source.values.key] = source

    themes: list[rules.ThemeValues] = []
    if not isinstance(document["themes"], dict):
        check.fail(document, "themes", "'themes' must map a theme slug to its name", "themes")
    else:
        for slug in document["themes"]:
            entry = _Entry(document["themes"], slug)
            themes.append(rules.check_theme(check.fields(entry, f"theme {slug}")))
    # Every declared slug, even a refused one, so that its findings are not reported a second time.
    known_themes = {slug for slug in document["themes"] if isinstance(slug, str)} if themes else set()

    judgements: list[rules.JudgementValues] = []
    raw_judgements = document.get("judgements") or []
    if not isinstance(raw_judgements, list):
        check.fail(document, "judgements", "'judgements' must be a list", "judgements")
        raw_judgements = []
    areas: set[str] = set()
    for node in raw_judgements:
        if check.mapping(node, "judgement", {"area", "grade"}, {"source", "inferred_because"}):
            judgement = rules.check_judgement(check.fields(node, "judgement"), sources=sources)
            if judgement.area in areas:
                check.fail(node, f"judgement {judgement.area}", "this area is graded twice", "area")
            areas.add(judgement.area)
            judgements.append(judgement)

    findings: list[rules.FindingValues] = []
    raw_findings = document["findings"]
    if not isinstance(raw_findings, list) or not raw_findings:
        check.fail(document, "findings", "'findings' must be a non-empty list", "findings")
        raw_findings = []
    seen: dict[tuple[str, str], str] = {}
    finding_fields = {"reference", "kind", "title", "summary", "themes"}
    for node in raw_findings:
        reference = node.get("reference") if isinstance(node, dict) else None
        where = f"finding {reference}" if isinstance(reference, str) and reference else "finding"
        if not check.mapping(node, where, finding_fields, {"outcome_measure", "quotes", *LEGACY_QUOTE_KEYS.values()}):
            continue
        fields = check.fields(node, where)
        quotations = _check_quotations(check, node, where, sources)
        finding = rules.check_finding(fields, known_themes=known_themes, quotations=quotations, themes_required=True)
        rules.check_unique_reference(
            fields,
            finding.reference,
            inspection=inspection.values.slug if inspection and inspection.values.slug else "this file",
            seen=seen,
            here=f"line {node.line}",
        )
        findings.append(finding)

    if check.problems or organisation is None or inspection is None:
        return None, check.problems
    parsed = ParsedFile(shown, organisation, org.line, inspection, themes, judgements, findings)
    parsed.sources = list(sources.values())
    return parsed, []


def _check_source(check: _Checker, node: _Node) -> SeedSource:
    where = f"source {node.get('key')}" if isinstance(node.get("key"), str) else "source"
    values = rules.check_source(check.fields(node, where))
    published = _date(check, node, where, "published")
    if values.url:
        _check_url(check, node, where, values.url)
    excerpt = node.get("excerpt") or ""
    if not isinstance(excerpt, str):
        check.fail(node, where, "must be the path of the source's excerpt in the repository", "excerpt")
        excerpt = ""
    elif excerpt and excerpts.read_excerpt(excerpt) is None:
        check.fail(node, where, f"the excerpt {excerpt!r} cannot be read (a path from the project folder)", "excerpt")
        excerpt = ""
    return SeedSource(values, published, excerpt)


def _check_quotations(
    check: _Checker, node: _Node, where: str, sources: Mapping[str, SeedSource]
) -> list[rules.QuotationValues]:
    """A finding's ``quotes`` (or an older file's one quote, source and location), each checked against
    the excerpt of the source it cites: words not found there are refused, not shown as anyone's."""
    legacy = [key for key in ("quote", "source", "location") if key in node]
    if "quotes" in node:
        if legacy:
            check.fail(node, where, f"give 'quotes' or {', '.join(legacy)}, not both", legacy[0])
        raw = node["quotes"]
        if not isinstance(raw, list) or not raw:
            check.fail(node, where, "must be a non-empty list of quotations (source, text, location)", "quotes")
            return []
        entries = [
            check.fields(item, where) for item in raw if check.mapping(item, where, {"source"}, {"text", "location"})
        ]
    elif "source" in node:
        entries = [check.fields(node, where, LEGACY_QUOTE_KEYS)]
    else:
        check.fail(node, where, "missing field 'quotes' (each with source, text and location)", "quotes")
        return []
    found: list[rules.QuotationValues] = []
    for fields in entries:
        quotation = rules.check_quotation(fields, sources=sources)
        source = sources.get(quotation.source)
        if source and source.excerpt and quotation.text:
            excerpt = excerpts.read_excerpt(source.excerpt) or ""
            if not excerpts.appears_in(quotation.text, excerpt):
                fields.fail(
                    "text",
                    f"these words are not in {source.excerpt} (the excerpt of source '{quotation.source}'): "
                    f"{quotation.text[:80]!r}",
                )
        found.append(quotation)
    return found


def _date(check: _Checker, node: _Node, where: str, key: str) -> dt.date | None:
    value = node.get(key)
    if value is not None and not (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        check.fail(node, where, f"must be a date written YYYY-MM-DD, or null; got {value!r}", key)
        return None
    return value


def _check_url(check: _Checker, node: _Node, where: str, url: object, limit: int | None = None) -> str:
    if not isinstance(url, str):
        check.fail(node, where, f"must be a web address, not {url!r}", "url")
        return ""
    if limit and len(url) > limit:
        check.fail(node, where, f"is {len(url)} characters long; the limit is {limit}", "url")
        return ""
    if url:
        try:
            URLValidator()(url)
        except ValidationError:
            check.fail(node, where, f"is not a valid web address: {url!r}", "url")
            return ""
    return url


def _check_inspection(check: _Checker, node: _Node) -> SeedInspection:
    values = rules.check_inspection(check.fields(node, "inspection"))
    published = _date(check, node, "inspection", "published")
    url = _check_url(check, node, "inspection", node.get("url") or "", rules.max_length(Inspection, "url"))
    tracked = node.get("tracked", True)
    if not isinstance(tracked, bool):
        check.fail(node, "inspection", "must be true or false", "tracked")
    joint = rules.text(check.fields(node, "inspection"), "joint_inspectorates", Inspection)
    return SeedInspection(values, published, url, tracked is True, node.line, joint)


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
    problems.extend(_conflicts(parsed))
    if problems:
        raise SeedError("\n".join(str(p) for p in problems))
    return parsed


def _conflicts(parsed: list[ParsedFile]) -> list[Problem]:
    """What no single file shows: the files disagree with each other or with the database."""
    problems: list[Problem] = []
    inspections: dict[tuple[str, str], str] = {}
    organisations: dict[str, ParsedFile] = {}
    names: dict[str, ParsedFile] = {}
    for item in parsed:
        org, line = item.organisation, item.organisation_line
        key = (org.slug, item.inspection.values.slug)
        if key in inspections:
            problems.append(
                Problem(
                    item.path,
                    item.inspection.line,
                    "inspection",
                    f"inspection '{key[1]}' is also in {inspections[key]}",
                    "slug",
                )
            )
        inspections[key] = item.path
        first = organisations.setdefault(org.slug, item)
        for name in ("name", "kind"):
            if getattr(first.organisation, name) != getattr(org, name):
                problems.append(
                    Problem(
                        item.path,
                        line,
                        "organisation",
                        f"differs from {first.path} for organisation '{org.slug}' "
                        f"({getattr(first.organisation, name)!r}); make them the same",
                        name,
                    )
                )
        other = names.setdefault(org.name, item)
        if other.organisation.slug != org.slug:
            problems.append(
                Problem(
                    item.path,
                    line,
                    "organisation",
                    f"'{org.name}' is also the name of '{other.organisation.slug}' in {other.path}",
                    "name",
                )
            )
    for item in organisations.values():
        org = item.organisation
        taken = Organisation.objects.filter(name=org.name).exclude(slug=org.slug).values_list("slug", flat=True).first()
        if taken:
            problems.append(
                Problem(
                    item.path,
                    item.organisation_line,
                    "organisation",
                    f"'{org.name}' is already the name of organisation '{taken}'; use that slug or another name",
                    "name",
                )
            )
    return problems


# --- Loading -----------------------------------------------------------------------------------


def seed(paths: list[Path] | None = None, *, dry_run: bool = False) -> SeedReport:
    """Validate every file, then load all of them in one transaction (rolled back on a dry run)."""
    files = parse_all(paths if paths is not None else default_paths())
    report = SeedReport()
    current = None
    try:
        with transaction.atomic():
            for current in files:
                _load(current, report)
            if dry_run:
                transaction.set_rollback(True)
    except (DatabaseError, WorkflowError) as exc:
        # Validation above should make this unreachable; if the database still refuses (a change made
        # meanwhile), say which file, and everything has been rolled back.
        raise SeedError(f"{current.path if current else 'seeds'}: could not be saved: {exc}") from None
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
    report.updated.append(f"{label}: {', '.join(name.removesuffix('_id') for name in changed)}")


def _load(item: ParsedFile, report: SeedReport) -> None:
    org_data = item.organisation
    org, created = Organisation.objects.get_or_create(
        slug=org_data.slug, defaults={"name": org_data.name, "kind": org_data.kind}
    )
    if created:
        report.created.append(f"organisation {org.name}")
    else:
        _sync(org, {"name": org_data.name, "kind": org_data.kind}, report, f"organisation {org.slug}")

    themes: dict[str, Theme] = {}
    for theme_data in item.themes:
        theme, created = Theme.objects.get_or_create(slug=theme_data.slug, defaults={"name": theme_data.name})
        if created:
            report.created.append(f"theme {theme.name}")
        themes[theme.slug] = theme

    data = item.inspection
    values = {
        "inspectorate": data.values.inspectorate,
        "programme": data.values.programme,
        "title": data.values.title,
        "published": data.published,
        "published_text": data.values.published_text,
        "url": data.url,
        "tracked": data.tracked,
        "joint_inspectorates": data.joint_inspectorates,
    }
    # Slugs are unique per organisation: another organisation's inspection of the same name is not this one.
    # The dates a lead sets (action plan, revisit) are not the file's: they are never written here.
    inspection = Inspection.objects.filter(organisation=org, slug=data.values.slug).first()
    if inspection is None:
        inspection = Inspection.objects.create(organisation=org, slug=data.values.slug, **values)
        report.created.append(f"inspection {inspection.title}")
    else:
        _sync(inspection, values, report, f"inspection {inspection.slug}")

    sources = _load_sources(item, inspection, report)

    for judgement_data in item.judgements:
        values = {
            "grade": judgement_data.grade,
            "source_id": sources[judgement_data.source].pk if judgement_data.source else None,
            "inferred_because": judgement_data.inferred_because,
        }
        judgement = Judgement.objects.filter(inspection=inspection, area=judgement_data.area).first()
        if judgement is None:
            judgement = Judgement.objects.create(inspection=inspection, area=judgement_data.area, **values)
            report.created.append(f"judgement {judgement}")
        else:
            _sync(judgement, values, report, f"judgement {judgement.area}")

    existing = {
        f.reference: f
        for f in inspection.findings.prefetch_related("themes", excerpts.quotations_prefetch()).select_related(
            "recommendation"
        )
    }
    listed: set[str] = set()
    interval = settings.DEFAULT_REVIEW_INTERVAL_DAYS
    for data in item.findings:
        values = {"kind": data.kind, "title": data.title, "summary": data.summary}
        reference = data.reference
        listed.add(reference)
        finding = existing.get(reference)
        label = f"finding {inspection.slug} {reference}"
        if finding is None:
            finding = Finding.objects.create(inspection=inspection, reference=reference, **values)
            report.created.append(
                f"{label} ({len(data.quotations)} quotation{'s' if len(data.quotations) != 1 else ''})"
            )
        else:
            _sync(finding, values, report, label)
        _load_quotations(finding, data.quotations, sources, report, label, new=reference not in existing)
        wanted = {themes[slug].pk for slug in data.themes}
        if {t.pk for t in finding.themes.all()} != wanted:
            finding._change_reason = SEED_CHANGE_REASON
            finding.themes.set(wanted)
            if reference in existing:
                report.updated.append(f"{label}: themes")

        has_recommendation = Recommendation.objects.filter(finding=finding).exists()
        if not finding.is_tracked_kind:
            if has_recommendation:
                report.notes.append(
                    f"{item.path}: finding {reference} is now a {finding.get_kind_display().lower()}, which is "
                    "not tracked; its recommendation was left as it is"
                )
        elif inspection.tracked and not has_recommendation:
            # Created once; from then on the recommendation belongs to staff and is never overwritten.
            create_recommendation(
                finding,
                by=None,
                interval_days=interval,
                title=data.title,
                outcome_measure=data.outcome_measure,
                reason=excerpts.seeded_reason(inspection),
            )
            report.created.append(f"recommendation {inspection.slug} {reference}")

    for reference in sorted(existing.keys() - listed):
        report.notes.append(
            f"{item.path}: finding {reference} is in the database but no longer in the file; it was left as it is"
        )


def _load_sources(item: ParsedFile, inspection: Inspection, report: SeedReport) -> dict[str, Source]:
    found: dict[str, Source] = {}
    existing = {source.key: source for source in inspection.sources.all()}
    for data in item.sources:
        v = data.values
        values = {
            "title": v.title,
            "publisher": v.publisher,
            "kind": v.kind,
            "published": data.published,
            "published_text": v.published_text,
            "url": v.url,
        }
        source = existing.get(v.key)
        label = f"source {inspection.slug} {v.key}"
        if source is None:
            source = Source.objects.create(inspection=inspection, key=v.key, **values)
            report.created.append(f"{label} ({source.get_kind_display().lower()})")
        else:
            _sync(source, values, report, label)
        found[v.key] = source
    for key in sorted(existing.keys() - found.keys()):
        report.notes.append(
            f"{item.path}: source {key} of {inspection.slug} is in the database but no longer in the file; "
            "it was left as it is"
        )
    return found


def _load_quotations(
    finding: Finding,
    wanted: tuple[rules.QuotationValues, ...],
    sources: dict[str, Source],
    report: SeedReport,
    label: str,
    *,
    new: bool,
) -> None:
    """The file's quotations in order, by position: changed words or sources are updated (with history),
    and quotations the file no longer gives are removed (their history stays)."""
    current = {q.position: q for q in finding.quotations.all()} if not new else {}
    for position, data in enumerate(wanted, start=1):
        values = {"source_id": sources[data.source].pk, "text": data.text, "location": data.location}
        quotation = current.pop(position, None)
        if quotation is None:
            Quotation.objects.create(finding=finding, position=position, **values)
            if not new:
                report.created.append(f"{label} quotation {position}")
        else:
            _sync(quotation, values, report, f"{label} quotation {position}")
    for position, quotation in sorted(current.items()):
        quotation._change_reason = SEED_CHANGE_REASON
        quotation.delete()
        report.updated.append(f"{label} quotation {position}: removed (no longer in the file)")
