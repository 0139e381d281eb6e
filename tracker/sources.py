"""Sources: the publications findings quote, and the repository's short excerpts of them.

Each seeded source names an excerpt under ``seeds/sources/``: the few sentences the seed quotes, with
the publication's address. Seeding refuses a quotation whose words are not in its source's excerpt,
so a sentence can only be shown as the inspectorate's words if it was copied from the inspectorate.
How a quotation is labelled follows its source's kind (``Source.label``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Count, F, Prefetch, Window
from django.db.models.functions import RowNumber

from tracker.models import Finding, Inspection, Inspectorate, Quotation

_SPACE = re.compile(r"\s+")


def quotations_prefetch(prefix: str = "", to_attr: str | None = None) -> Prefetch:
    """Prefetch a finding's quotations with their sources, in order (``prefix`` e.g. ``finding__``);
    ``to_attr``: as a plain list under that name (no manager per finding: what a long export wants)."""
    return Prefetch(
        f"{prefix}quotations",
        queryset=Quotation.objects.select_related("source").order_by("position", "pk"),
        to_attr=to_attr,
    )


def seeded_from(inspectorate: str, joint_inspectorates: str, title: str, published, published_text: str) -> str:
    """The reason on a seeded recommendation's first event: the publication it comes from, as users read
    it ("Seeded from HMICFRS, <title>, 15 January 2025"), never the seed file's path. Plain values, so
    that migration 0014 words existing events the same way."""
    if inspectorate == Inspectorate.JOINT and joint_inspectorates:
        who = joint_inspectorates
    else:
        who = Inspectorate(inspectorate).label if inspectorate in Inspectorate.values else inspectorate
    when = f"{published:%-d %B %Y}" if published else published_text
    return "Seeded from " + ", ".join(part for part in (who, title, when) if part)


def seeded_reason(inspection) -> str:
    return seeded_from(
        inspection.inspectorate,
        inspection.joint_inspectorates,
        inspection.title,
        inspection.published,
        inspection.published_text,
    )


def excerpt_path(relative: str) -> Path:
    return Path(settings.BASE_DIR, relative)


def read_excerpt(relative: str) -> str | None:
    """The excerpt's text, or None when it cannot be read."""
    try:
        return excerpt_path(relative).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _normal(text: str) -> str:
    # Excerpts wrap long sentences over lines; the words and punctuation must match exactly.
    return _SPACE.sub(" ", text).strip()


def appears_in(words: str, excerpt: str) -> bool:
    """Whether ``words`` occur verbatim in ``excerpt`` (line breaks and runs of spaces aside)."""
    return bool(words.strip()) and _normal(words) in _normal(excerpt)


# Strengths on the dashboard: what to sustain, never tracked. A few per inspection and a link to the
# inspection page for the rest, so the page does not grow with the report.
STRENGTHS_SHOWN = 3


@dataclass
class Strengths:
    inspection: Inspection
    shown: list[Finding]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


def strengths_to_sustain(inspections: Sequence[Inspection], per_inspection: int | None = None) -> list[Strengths]:
    """The first strengths of each inspection (by reference) with how many it has, in the order the
    inspections are given: one query, whatever the number of inspections or strengths."""
    per_inspection = per_inspection or STRENGTHS_SHOWN
    by_pk = {inspection.pk: inspection for inspection in inspections}
    partition = {"partition_by": F("inspection_id")}
    rows = (
        Finding.objects.filter(inspection_id__in=list(by_pk), kind=Finding.Kind.STRENGTH)
        .annotate(
            strength_rank=Window(RowNumber(), order_by=[F("reference").asc(), F("pk").asc()], **partition),
            strength_total=Window(Count("pk"), **partition),
        )
        .filter(strength_rank__lte=per_inspection)
        .only("pk", "inspection_id", "reference", "title")
        .order_by("inspection_id", "strength_rank")
    )
    found: dict[int, Strengths] = {}
    for finding in rows:
        group = found.setdefault(
            finding.inspection_id, Strengths(by_pk[finding.inspection_id], [], finding.strength_total)
        )
        group.shown.append(finding)
    return [found[pk] for pk in by_pk if pk in found]
