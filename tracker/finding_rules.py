"""What an organisation, inspection, source, judgement and finding must look like, whoever supplies them.

Seeding (YAML files) and imports (CSV or Excel rows) both ask these functions, so what one accepts the
other accepts too. A rule reads values through a ``Fields`` object supplied by the interface, which
knows where each value came from and reports a problem in its own terms: seeding as
"seeds/x.yaml:17 finding CC1, field 'source': ...", imports as "row 3, column Source: ...".

Length limits are the models' own ``max_length``, so a value that passes here always fits its column.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from django.db import models

from tracker.models import (
    Finding,
    Grade,
    Inspection,
    Judgement,
    Organisation,
    Quotation,
    Recommendation,
    Source,
    SourceKind,
    Theme,
)

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
    publisher: str
    kind: str
    published_text: str
    url: str


def check_source(fields: Fields) -> SourceValues:
    """A publication that findings quote: what kind it is decides how its words are labelled.

    A source that does not say its kind (an older seed file, an import without the column) is a
    third-party summary: nothing is shown as the inspectorate's words unless a source says it is theirs.
    """
    kind = fields.get("kind")
    return SourceValues(
        key=slug(fields, "key", Source, "key"),
        title=text(fields, "title", Source),
        publisher=text(fields, "publisher", Source),
        kind=SourceKind.THIRD_PARTY_SUMMARY if kind is None or kind == "" else choice(fields, "kind", SourceKind),
        published_text=text(fields, "published_text", Source),
        url=text(fields, "url", Source),
    )


@dataclass(frozen=True)
class QuotationValues:
    source: str  # the source's key (seed files) or title (imports)
    text: str
    location: str


def check_quotation(fields: Fields, *, sources: Collection[str]) -> QuotationValues:
    """Words of a declared source (or none: summarised from it) and where in it they are."""
    return QuotationValues(
        source=source_key(fields, sources, required=True),
        text=text(fields, "text", Quotation),
        location=text(fields, "location", Quotation),
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
    inferred_because: str = ""


def check_judgement(fields: Fields, *, sources: Collection[str]) -> JudgementValues:
    return JudgementValues(
        area=text(fields, "area", Judgement),
        grade=choice(fields, "grade", Grade),
        source=source_key(fields, sources, required=False),
        inferred_because=text(fields, "inferred_because", Judgement),
    )


@dataclass(frozen=True)
class FindingValues:
    reference: str
    kind: str
    title: str
    summary: str
    quotations: tuple[QuotationValues, ...]
    themes: list[str]
    outcome_measure: str

    @property
    def quote(self) -> str:
        return self.quotations[0].text if self.quotations else ""

    @property
    def source_title(self) -> str:
        """An import's source is named by its title; a seed file's by its key."""
        return self.quotations[0].source if self.quotations else ""


def check_finding(
    fields: Fields,
    *,
    known_themes: Collection[str],
    quotations: Collection[QuotationValues] | None = None,
    themes_required: bool = False,
) -> FindingValues:
    """A finding and the recommendation made from it (a strength is shown, not tracked).

    ``quotations`` are the seed file's, already checked (``check_quotation``); without them the finding
    gives one quotation as an import row does: the source's title in ``source_title``, the words in
    ``quote`` and the place in ``source_location``.
    """
    if quotations is None:
        quotations = (
            QuotationValues(
                source=text(fields, "source_title", Source, "title"),
                text=text(fields, "quote", Quotation, "text"),
                location=text(fields, "source_location", Quotation, "location"),
            ),
        )
    values = FindingValues(
        reference=reference(fields),
        kind=choice(fields, "kind", Finding.Kind),
        title=text(fields, "title", Finding),
        summary=text(fields, "summary", Finding),
        quotations=tuple(quotations),
        themes=themes(fields, known_themes, required=themes_required),
        outcome_measure=text(fields, "outcome_measure", Recommendation),
    )
    return values


def check_tracked_kind(fields: Fields, kind: str) -> None:
    """Where every row becomes a recommendation (imports), a strength has no place: it is not tracked."""
    if kind == Finding.Kind.STRENGTH:
        fields.fail("kind", "a strength is shown, not tracked; add strengths through a seed file or the admin")


def check_unique_reference(
    fields: Fields, reference_: str, *, inspection: str, seen: dict[tuple[str, str], str], here: str
) -> None:
    """Each reference once per inspection; ``seen`` maps (inspection, reference) to where it first was."""
    if not reference_ or not inspection:
        return
    first = seen.setdefault((inspection, reference_), here)
    if first != here:
        fields.fail("reference", f"duplicate reference {reference_} in {inspection!r} (also on {first})")
