"""One finding validator: seeding and imports refuse the same finding with the same message, each in its own terms."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.core.test_seeding import VALID
from tests.factories import ThemeFactory
from tracker import imports
from tracker.exports import COLUMNS
from tracker.models import Finding, Quotation, Recommendation, Source
from tracker.seeding import SeedError, seed

pytestmark = pytest.mark.django_db

TITLE = Finding._meta.get_field("title").max_length
QUOTE = Quotation._meta.get_field("text").max_length
SOURCE = Source._meta.get_field("title").max_length
OUTCOME = Recommendation._meta.get_field("outcome_measure").max_length

# (what, the seed file's key and value, the import's column and value, the message both give)
CASES = [
    ("unknown kind", ("kind", "whim"), ("Kind", "whim"), "unknown kind 'whim' (expected one of: graded_judgement"),
    ("bad reference", ("reference", "C-1"), ("Reference", "C-1"), "'C-1' must look like CC1 or AFI12"),
    ("empty title", ("title", "''"), ("Title", ""), "must not be empty"),
    ("long title", ("title", "x" * (TITLE + 1)), ("Title", "x" * (TITLE + 1)), f"the limit is {TITLE:,}"),
    (
        "long quote",
        ("quote", "q" * (QUOTE + 1)),
        ("Quotation", "q" * (QUOTE + 1)),
        f"the limit is {QUOTE:,}",
    ),
    ("empty summary", ("summary", "''"), ("Summary", ""), "must not be empty"),
    ("unknown theme", ("themes", "[weather]"), ("Themes", "weather"), "unknown theme 'weather' (known: "),
    (
        "long outcome measure",
        ("outcome_measure", "o" * (OUTCOME + 1)),
        ("Outcome measure", "o" * (OUTCOME + 1)),
        f"the limit is {OUTCOME:,}",
    ),
]


def _seed_problems(tmp_path, key: str, value: str) -> str:
    lines = [f"    {key}: {value}" if line.startswith(f"    {key}:") else line for line in VALID.splitlines()]
    if key == "reference":
        lines = [line.replace("reference: CC1", f"reference: {value}") for line in lines]
    if key == "outcome_measure":
        lines.append(f"    {key}: {value}")
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SeedError) as failure:
        seed([path])
    return str(failure.value)


def _import_problems(lead, column: str, value: str) -> str:
    values = {
        "Inspection slug": "acme-2026",
        "Inspection": "Acme",
        "Inspectorate": "HMICFRS",
        "Programme": "National child protection inspection",
        "Reference": "CC1",
        "Kind": "Cause of concern",
        "Title": "Respond to missing children",
        "Summary": "Slow.",
        "Quotation": "not found quickly",
        "Source": "The report",
        "Themes": "missing-children",
        column: value,
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    headers = [c.header for c in COLUMNS if c.importable]
    writer.writerow(headers)
    writer.writerow([values.get(h, "") for h in headers])
    with pytest.raises(imports.ImportFailed) as failure:
        imports.import_recommendations(buffer.getvalue().encode(), by=lead)
    return str(failure.value)


@pytest.mark.parametrize(("case", "seeded", "imported", "message"), CASES, ids=[c[0] for c in CASES])
def test_seeding_and_imports_refuse_a_finding_alike(tmp_path, lead, case, seeded, imported, message):
    ThemeFactory(slug="missing-children", name="Missing children")

    from_seed = _seed_problems(tmp_path, *seeded)
    from_import = _import_problems(lead, *imported)

    seed_key = seeded[0]
    assert re.search(rf"rules\.yaml:\d+ finding \S+, field '{seed_key}': ", from_seed), from_seed
    assert f"row 2, column {imported[0]}: " in from_import, from_import
    seed_message = from_seed.split(f"field '{seed_key}': ", 1)[1].splitlines()[0]
    import_message = from_import.split(f"column {imported[0]}: ", 1)[1].splitlines()[0]
    assert message in seed_message
    if case != "unknown theme":  # the known themes differ: the file's own, or the database's
        assert seed_message == import_message
    else:
        assert import_message.startswith(message)
