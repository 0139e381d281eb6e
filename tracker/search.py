"""The list's text search, served by an index on each database: what ``?q=`` matches never depends on which.

A search matches a recommendation whose finding's reference is the words exactly (any case), or whose
title, finding summary or outcome measure contains them (any case). ``LIKE '%words%'`` over every row
took 185 ms at 50,000 recommendations, so:

- on SQLite, an FTS5 table with the trigram tokenizer (``tracker_recommendation_search``, one row per
  recommendation, rowid = its id) answers "contains" from an index. Triggers keep it in step with every
  write, the ORM's, bulk inserts and raw SQL alike. Trigrams need three characters: a shorter search
  falls back to ``LIKE``, which is still right, only slower.
- on PostgreSQL, pg_trgm GIN indexes on ``UPPER(column)`` serve Django's own ``icontains`` (which is
  ``UPPER(col) LIKE UPPER('%words%')``), and a B-tree on ``UPPER(reference)`` its ``iexact``. Each table
  is searched in a subquery of its own, so that each can use its index. Without the extension (no
  privilege to create it) the same query runs unindexed, with the same answer.

Both are made by migration 0012_scale through ``install``. SQLite drops a table's triggers when a
migration remakes that table (most ``AlterField`` and some ``AddField`` operations on it): such a
migration must call ``install`` again. ``tests/web/test_scale.py`` checks the triggers exist.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.db.models.lookups import In

logger = logging.getLogger(__name__)

TABLE = "tracker_recommendation_search"
TRIGGERS = (
    "tracker_recommendation_search_insert",
    "tracker_recommendation_search_update",
    "tracker_recommendation_search_delete",
    "tracker_finding_search_update",
)
MIN_INDEXED = 3  # characters: the trigram tokenizer matches nothing shorter

_ROW = """INSERT INTO tracker_recommendation_search(rowid, title, summary, outcome_measure)
    SELECT NEW.id, NEW.title, f.summary, NEW.outcome_measure FROM tracker_finding f WHERE f.id = NEW.finding_id;"""

# Literal SQL, no interpolation: names only, never input.
SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS tracker_recommendation_search "
    "USING fts5(title, summary, outcome_measure, tokenize='trigram')",
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_insert",
    "CREATE TRIGGER tracker_recommendation_search_insert AFTER INSERT ON tracker_recommendation BEGIN " + _ROW + " END",
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_update",
    """CREATE TRIGGER tracker_recommendation_search_update
    AFTER UPDATE OF title, outcome_measure, finding_id ON tracker_recommendation
    WHEN OLD.title IS NOT NEW.title OR OLD.outcome_measure IS NOT NEW.outcome_measure
        OR OLD.finding_id IS NOT NEW.finding_id OR OLD.id IS NOT NEW.id
    BEGIN
    DELETE FROM tracker_recommendation_search WHERE rowid = OLD.id;
    INSERT INTO tracker_recommendation_search(rowid, title, summary, outcome_measure)
    SELECT NEW.id, NEW.title, f.summary, NEW.outcome_measure FROM tracker_finding f WHERE f.id = NEW.finding_id;
    END""",
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_delete",
    """CREATE TRIGGER tracker_recommendation_search_delete AFTER DELETE ON tracker_recommendation
    BEGIN DELETE FROM tracker_recommendation_search WHERE rowid = OLD.id; END""",
    "DROP TRIGGER IF EXISTS tracker_finding_search_update",
    """CREATE TRIGGER tracker_finding_search_update AFTER UPDATE OF summary ON tracker_finding
    WHEN OLD.summary IS NOT NEW.summary
    BEGIN UPDATE tracker_recommendation_search SET summary = NEW.summary
        WHERE rowid IN (SELECT id FROM tracker_recommendation WHERE finding_id = NEW.id); END""",
    # Whatever is there is rebuilt from the tables, so installing again (after a remake) is safe.
    "DELETE FROM tracker_recommendation_search",
    """INSERT INTO tracker_recommendation_search(rowid, title, summary, outcome_measure)
    SELECT r.id, r.title, f.summary, r.outcome_measure
    FROM tracker_recommendation r JOIN tracker_finding f ON f.id = r.finding_id""",
    # A case-insensitive index the reference's iexact (LIKE without wildcards) can use.
    "CREATE INDEX IF NOT EXISTS tracker_finding_reference_nocase ON tracker_finding(reference COLLATE NOCASE)",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_insert",
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_update",
    "DROP TRIGGER IF EXISTS tracker_recommendation_search_delete",
    "DROP TRIGGER IF EXISTS tracker_finding_search_update",
    "DROP TABLE IF EXISTS tracker_recommendation_search",
    "DROP INDEX IF EXISTS tracker_finding_reference_nocase",
]

POSTGRESQL_TRIGRAM = [
    "CREATE INDEX IF NOT EXISTS rec_title_trgm ON tracker_recommendation USING gin (UPPER(title) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS rec_outcome_trgm ON tracker_recommendation "
    "USING gin (UPPER(outcome_measure) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS finding_summary_trgm ON tracker_finding USING gin (UPPER(summary) gin_trgm_ops)",
]
POSTGRESQL = ["CREATE INDEX IF NOT EXISTS finding_reference_upper ON tracker_finding (UPPER(reference))"]
POSTGRESQL_REVERSE = [
    "DROP INDEX IF EXISTS rec_title_trgm",
    "DROP INDEX IF EXISTS rec_outcome_trgm",
    "DROP INDEX IF EXISTS finding_summary_trgm",
    "DROP INDEX IF EXISTS finding_reference_upper",
]


def install(schema_editor) -> None:
    """Create (or re-create) the search index of this database; called by migrations."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for sql in SQLITE:
            schema_editor.execute(sql)
    elif vendor == "postgresql":
        for sql in POSTGRESQL:
            schema_editor.execute(sql)
        try:
            with transaction.atomic(using=schema_editor.connection.alias):
                schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                for sql in POSTGRESQL_TRIGRAM:
                    schema_editor.execute(sql)
        except DatabaseError as exc:  # no privilege for the extension: searches stay right, only slower
            logger.warning("pg_trgm is not available, so searches are not indexed: %s", exc)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}.get(vendor, []):
        schema_editor.execute(sql)


def _fts_phrase(words: str) -> str:
    # One FTS5 string: the words as typed, a double quote doubled, so nothing in them is query syntax.
    return '"' + words.replace('"', '""') + '"'


def tests_rows_first(words: str) -> bool:
    """Whether a search of the list tests its first rows one by one (``like``) before reading every match.

    On PostgreSQL, yes: the trigram indexes find every match of a common word, to be sorted (23 ms at 50,000).
    On SQLite, when the words are long enough for the FTS5 index: its matches are read once and the first rows
    tested against them, where reading every match and sorting them cost 22 ms at 50,000 for a common word.
    Shorter words are not in that index, and their ``like`` would read every finding.
    """
    return connection.vendor == "postgresql" or _in_fts(words)


def like(words: str) -> Q:
    """What ``matches`` means, tested row by row: for testing a few rows, not for finding them."""
    from tracker.models import Finding

    if _in_fts(words):
        # Each row tested against the index's matches (read once): "+ 0" keeps SQLite from starting from
        # them, every match then sorted, rather than walking the list's own order.
        return _by_reference(words) | Q(In(F("pk") + 0, _fts_matches(words)))
    # The findings' side as one subquery (few ids, from their own indexes), so that no row joins its finding.
    findings = Finding.objects.filter(Q(reference__iexact=words) | Q(summary__icontains=words)).values("pk")
    return Q(title__icontains=words) | Q(outcome_measure__icontains=words) | Q(finding__in=findings)


def _in_fts(words: str) -> bool:
    return connection.vendor == "sqlite" and len(words) >= MIN_INDEXED


def _fts_matches(words: str) -> RawSQL:
    return RawSQL(  # a literal query; the words are a parameter
        "SELECT rowid FROM tracker_recommendation_search WHERE tracker_recommendation_search MATCH %s",
        [_fts_phrase(words)],
    )


def _by_reference(words: str) -> Q:
    from tracker.models import Finding

    return Q(finding__in=Finding.objects.filter(reference__iexact=words).values("pk"))


def matches(words: str) -> Q:
    """Recommendations matching the search ``words`` (already stripped, not empty)."""
    from tracker.models import Finding, Recommendation

    if _in_fts(words):
        return _by_reference(words) | Q(pk__in=_fts_matches(words))

    # One subquery per column, joined by UNION into one list of ids: an OR of the columns was planned as a
    # sequential scan of the recommendations on PostgreSQL at 50,000 rows, while each column alone uses its
    # own index, and one IN (rather than an OR of several) lets the planner start from few matches.
    def ids(condition: Q):
        return Recommendation.objects.filter(condition).order_by().values("pk")

    return Q(
        pk__in=ids(Q(title__icontains=words)).union(
            ids(Q(outcome_measure__icontains=words)),
            ids(Q(finding__in=Finding.objects.filter(summary__icontains=words).values("pk"))),
            ids(Q(finding__in=Finding.objects.filter(reference__iexact=words).values("pk"))),
        )
    )
