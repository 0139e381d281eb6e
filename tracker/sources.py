"""Sources: the publications findings quote, and the repository's short excerpts of them.

Each seeded source names an excerpt under ``seeds/sources/``: the few sentences the seed quotes, with
the publication's address. Seeding refuses a quotation whose words are not in its source's excerpt,
so a sentence can only be shown as the inspectorate's words if it was copied from the inspectorate.
How a quotation is labelled follows its source's kind (``Source.label``).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.db.models import Prefetch

from tracker.models import Inspectorate, Quotation

_SPACE = re.compile(r"\s+")


def quotations_prefetch(prefix: str = "") -> Prefetch:
    """Prefetch a finding's quotations with their sources, in order (``prefix`` e.g. ``finding__``)."""
    return Prefetch(
        f"{prefix}quotations", queryset=Quotation.objects.select_related("source").order_by("position", "pk")
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
