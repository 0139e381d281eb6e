"""What an organisation, inspection, source, judgement and finding must look like, whoever supplies them.

Seeding (YAML files) and imports (CSV or Excel rows) both ask these functions, so what one accepts the
other accepts too. A rule reads values through a ``Fields`` object supplied by the interface, which
knows where each value came from and reports a problem in its own terms: seeding as
"seeds/x.yaml:17 finding CC1, field 'source': ...", imports as "row 3, column Source: ...".

Length limits are the models' own ``max_length``, so a value that passes here always fits its column.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from django.db import models

from tracker.models import Finding, Grade, Inspection, Judgement, Organisation, Recommendation, Theme

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REFERENCE = re.compile(r"^[A-Z]{1,6}[0-9]{1,3}[a-z]?$")


class Fields(Protocol):
    """One record's values as an interface supplies them, and where to report a problem with each."""

    def get(self, name: str) -> object:
        """The raw value of ``name``, None when absent, or ``INVALID`` when already reported."""

    def fail(self, name: str, message: str) -> None:
        """Record a problem with the value of ``name``."""


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


# A value the interface has refused already (a spreadsheet formula, say): rules skip it silently.
INVALID = _Invalid()


def max_length(model: type[models.Model], name: str) -> int | None:
    return model._meta.get_field(name).max_length


def _described(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


# --- Single values -----------------------------------------------------------------------------


def text(fields: Fields, name: str, model: type[models.Model], model_field: str | None = None) -> str:
    """Text for ``model.model_field`` (default: ``name``), required unless the model allows it blank."""
    column = model._meta.get_field(model_field or name)
    value = fields.get(name)
    if value is INVALID:
        return ""
    if value is None:
        value = ""
    if not isinstance(value, str):
        fields.fail(name, f"must be text, not {_described(value)}; put it in quotes")
        return ""
    value = value.strip()
    limit = max_length(model, model_field or name)
    if not value and not column.blank:
        fields.fail(name, "must not be empty")
    elif limit is not None and len(value) > limit:
        fields.fail(name, f"is {len(value):,} characters long; the limit is {limit:,}")
    return value


def choice(fields: Fields, name: str, choices: type[models.TextChoices]) -> str:
    """One of ``choices``, by its code or its label, in any case; returns the code."""
    value = fields.get(name)
    if value is INVALID:
        return ""
    if isinstance(value, str):
        wanted = value.strip().lower()
        for code, label in choices.choices:
            if wanted in (code.lower(), str(label).lower()):
                return code
    if value is None or value == "":
        fields.fail(name, "must not be empty")
    else:
        shown = value if isinstance(value, str | int | float) else _described(value)
        expected = ", ".join(f"{code} ({label})" for code, label in choices.choices)
        fields.fail(name, f"unknown {name} {shown!r} (expected one of: {expected})")
    return ""


def slug(fields: Fields, name: str, model: type[models.Model] | None, model_field: str = "slug") -> str:
    """Lowercase letters, digits and hyphens, within ``model.model_field``'s limit (if it is stored)."""
    value = fields.get(name)
    if value is INVALID:
        return ""
    limit = max_length(model, model_field) if model else None
    if value is None or value == "":
        fields.fail(name, "must not be empty")
        return ""
    if not isinstance(value, str) or not SLUG.match(value):
        shown = value if isinstance(value, str | int | float | type(None)) else _described(value)
        fields.fail(name, f"must be lowercase letters, digits and hyphens, e.g. acme-2026-ncpi; got {shown!r}")
        return ""
    if limit is not None and len(value) > limit:
        fields.fail(name, f"is {len(value)} characters long; the limit is {limit}")
        return ""
    return value


def reference(fields: Fields, name: str = "reference") -> str:
    value = text(fields, name, Finding, "reference")
    if value and not REFERENCE.match(value):
        fields.fail(name, f"{value!r} must look like CC1 or AFI12")
        return ""
    return value


def themes(fields: Fields, known: Collection[str], *, required: bool, name: str = "themes") -> list[str]:
    """Theme slugs, each already known. Seed files must give at least one (they feed the theme history)."""
    value = fields.get(name)
    if value is INVALID:
        return []
    if value is None:
        value = []
    if not isinstance(value, list):
        fields.fail(name, f"must be a list of theme slugs, not {_described(value)}")
        return []
    if required and not value:
        fields.fail(name, "must list at least one theme")
    found: list[str] = []
    for item in value:
        if not isinstance(item, str):
            fields.fail(name, f"each theme must be a theme slug, not {_described(item)}")
        elif item not in known:
            fields.fail(name, f"unknown theme {item!r} (known: {', '.join(sorted(known)) or 'none'})")
        elif item not in found:
            found.append(item)
    return found


def source_key(fields: Fields, declared: Collection[str], *, required: bool, name: str = "source") -> str:
    """The key of one of the file's declared sources."""
    value = fields.get(name)
    if value is None and not required:
        return ""
    listed = ", ".join(declared) or "none"
    if not isinstance(value, str):
        fields.fail(name, f"must be the key of one of the file's sources, not {_described(value)} (declared: {listed})")
        return ""
    if value not in declared:
        fields.fail(name, f"unknown source {value!r} (declared: {listed})")
        return ""
    return value


# --- Records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationValues:
    slug: str
    name: str
    kind: str


def check_organisation(fields: Fields) -> OrganisationValues:
    return OrganisationValues(
        slug=slug(fields, "slug", Organisation),
        name=text(fields, "name", Organisation),
        kind=choice(fields, "kind", Organisation.Kind),
    )


@dataclass(frozen=True)
class InspectionValues:
    slug: str
    inspectorate: str
    programme: str
    title: str
    published_text: str


def check_inspection(fields: Fields) -> InspectionValues:
    return InspectionValues(
        slug=slug(fields, "slug", Inspection),
        inspectorate=choice(fields, "inspectorate", Inspection.Inspectorate),
        programme=text(fields, "programme", Inspection),
        title=text(fields, "title", Inspection),
        published_text=text(fields, "published_text", Inspection),
    )


@dataclass(frozen=True)
class SourceValues:
    key: str
    title: str
    reference: str


def check_source(fields: Fields) -> SourceValues:
    """A document that findings quote from; its title and reference are copied onto each finding."""
    return SourceValues(
        key=slug(fields, "key", None),  # only names the source within its file
        title=text(fields, "title", Finding, "source_title"),
        reference=text(fields, "reference", Finding, "source_reference"),
    )


@dataclass(frozen=True)
class ThemeValues:
    slug: str
    name: str


def check_theme(fields: Fields) -> ThemeValues:
    return ThemeValues(slug=slug(fields, "slug", Theme), name=text(fields, "name", Theme))


@dataclass(frozen=True)
class JudgementValues:
    area: str
    grade: str
    source: str


def check_judgement(fields: Fields, *, sources: Collection[str]) -> JudgementValues:
    return JudgementValues(
        area=text(fields, "area", Judgement),
        grade=choice(fields, "grade", Grade),
        source=source_key(fields, sources, required=False),
    )


@dataclass(frozen=True)
class FindingValues:
    reference: str
    kind: str
    title: str
    summary: str
    quote: str
    source_title: str
    source_reference: str
    source_location: str
    themes: list[str]
    outcome_measure: str


def check_finding(
    fields: Fields,
    *,
    known_themes: Collection[str],
    sources: Mapping[str, SourceValues] | None = None,
    themes_required: bool = False,
) -> FindingValues:
    """A finding and the recommendation made from it.

    With ``sources`` (a seed file's declared sources), the finding names one by its key in ``source``;
    without, it gives the document's title in ``source_title`` (an import row).
    """
    if sources is not None:
        key = source_key(fields, sources, required=True)
        source = sources.get(key) if key else None
        source_title, source_reference = (source.title, source.reference) if source else ("", "")
    else:
        source_title = text(fields, "source_title", Finding)
        source_reference = text(fields, "source_reference", Finding)
    values = FindingValues(
        reference=reference(fields),
        kind=choice(fields, "kind", Finding.Kind),
        title=text(fields, "title", Finding),
        summary=text(fields, "summary", Finding),
        quote=text(fields, "quote", Finding),
        source_title=source_title,
        source_reference=source_reference,
        source_location=text(fields, "source_location", Finding),
        themes=themes(fields, known_themes, required=themes_required),
        outcome_measure=text(fields, "outcome_measure", Recommendation),
    )
    return values


def check_unique_reference(
    fields: Fields, reference_: str, *, inspection: str, seen: dict[tuple[str, str], str], here: str
) -> None:
    """Each reference once per inspection; ``seen`` maps (inspection, reference) to where it first was."""
    if not reference_ or not inspection:
        return
    first = seen.setdefault((inspection, reference_), here)
    if first != here:
        fields.fail("reference", f"duplicate reference {reference_} in {inspection!r} (also on {first})")
