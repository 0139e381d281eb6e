"""Counts kept as the rows change, so that the dashboard reads a few rows instead of every recommendation.

At 50,000 recommendations the dashboard's counts by inspection, status and RAG read every recommendation
(115 ms), and its themes every finding and theme link (150 ms), on every view. Two small tables keep those
figures instead:

- ``tracker_recommendationcount``: recommendations per (organisation, inspection, status, RAG);
- ``tracker_themecount``: findings other than strengths per (inspection, theme);
- ``tracker_themestatuscount``: recommendations per (organisation, theme, status, next review date), for
  the list filtered by a theme (at 50,000 on PostgreSQL its grouped count read the theme's 6,250 rows and
  their recommendations: 17 ms). Overdue depends on today, so the date is kept rather than the overdue
  count: the overdue ones are the open statuses' rows dated before today. A row that falls to zero is
  deleted, so the dates that reviews leave behind do not pile up.

Database triggers keep them, in the writing transaction: every write reaches them, the workflow's, the
imports' bulk inserts, the admin's, seeding's and raw SQL alike (a Python hook would miss the bulk and
raw ones). ``tests/oversight/test_counts.py`` checks after every kind of write that they equal a fresh
count. What depends on today (overdue, target missed) is not kept: it is counted from the indexes on the
review and target dates.

Made by migrations 0016_scale_counts and 0022_theme through ``install``, which also fills the tables from
the rows. Like the search index's triggers, SQLite drops these when a migration remakes
``tracker_recommendation``, ``tracker_finding`` or ``tracker_finding_themes``: such a migration must call
``install`` again (``tests/oversight/test_counts.py`` checks the triggers exist).

On PostgreSQL, a change of status or RAG updates two counter rows; the trigger always touches them in
the same order, so two writers moving recommendations opposite ways wait for each other, never deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from tracker.models import Finding, Recommendation, RecommendationCount, ThemeCount, ThemeStatusCount

TRIGGERS = (
    "tracker_counts_rec_insert",
    "tracker_counts_rec_update",
    "tracker_counts_rec_delete",
    "tracker_counts_finding_update",
    "tracker_counts_theme_insert",
    "tracker_counts_theme_delete",
)
THEME_STATUS_TRIGGERS = (
    "tracker_counts_themestatus_rec_insert",
    "tracker_counts_themestatus_rec_update",
    "tracker_counts_themestatus_rec_delete",
    "tracker_counts_themestatus_link_insert",
    "tracker_counts_themestatus_link_delete",
)
_THEME_STATUS_TABLES = (
    "tracker_recommendation",
    "tracker_recommendation",
    "tracker_recommendation",
    "tracker_finding_themes",
    "tracker_finding_themes",
)

# Literal SQL, no interpolation: names only, never input. 'strength' is Finding.Kind.STRENGTH (a test checks).
_REC_ADD = """INSERT INTO tracker_recommendationcount(organisation_id, inspection_id, status, rag, n)
    SELECT NEW.organisation_id, f.inspection_id, NEW.status, NEW.rag, 1 FROM tracker_finding f
    WHERE f.id = NEW.finding_id
    ON CONFLICT(organisation_id, inspection_id, status, rag) DO UPDATE SET n = n + 1;"""
_REC_REMOVE = """UPDATE tracker_recommendationcount SET n = n - 1
    WHERE organisation_id = OLD.organisation_id AND status = OLD.status AND rag = OLD.rag
    AND inspection_id = (SELECT f.inspection_id FROM tracker_finding f WHERE f.id = OLD.finding_id);"""
_FILL = [
    "DELETE FROM tracker_recommendationcount",
    """INSERT INTO tracker_recommendationcount(organisation_id, inspection_id, status, rag, n)
    SELECT r.organisation_id, f.inspection_id, r.status, r.rag, COUNT(*)
    FROM tracker_recommendation r JOIN tracker_finding f ON f.id = r.finding_id
    GROUP BY r.organisation_id, f.inspection_id, r.status, r.rag""",
    "DELETE FROM tracker_themecount",
    """INSERT INTO tracker_themecount(inspection_id, theme_id, n)
    SELECT f.inspection_id, ft.theme_id, COUNT(*)
    FROM tracker_finding_themes ft JOIN tracker_finding f ON f.id = ft.finding_id
    WHERE f.kind <> 'strength'
    GROUP BY f.inspection_id, ft.theme_id""",
]

SQLITE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
    "CREATE TRIGGER tracker_counts_rec_insert AFTER INSERT ON tracker_recommendation BEGIN " + _REC_ADD + " END",
    "CREATE TRIGGER tracker_counts_rec_delete AFTER DELETE ON tracker_recommendation BEGIN " + _REC_REMOVE + " END",
    """CREATE TRIGGER tracker_counts_rec_update
    AFTER UPDATE OF status, rag, finding_id, organisation_id ON tracker_recommendation
    WHEN OLD.status IS NOT NEW.status OR OLD.rag IS NOT NEW.rag OR OLD.finding_id IS NOT NEW.finding_id
        OR OLD.organisation_id IS NOT NEW.organisation_id
    BEGIN """
    + _REC_REMOVE
    + _REC_ADD
    + " END",
    # A finding moved to another inspection (or made a strength, or no longer one) moves its counts.
    """CREATE TRIGGER tracker_counts_finding_update AFTER UPDATE OF inspection_id, kind ON tracker_finding
    WHEN OLD.inspection_id IS NOT NEW.inspection_id OR OLD.kind IS NOT NEW.kind
    BEGIN
    UPDATE tracker_recommendationcount SET n = n - 1
        WHERE inspection_id = OLD.inspection_id AND (organisation_id, status, rag) IN
        (SELECT organisation_id, status, rag FROM tracker_recommendation WHERE finding_id = OLD.id);
    INSERT INTO tracker_recommendationcount(organisation_id, inspection_id, status, rag, n)
        SELECT r.organisation_id, NEW.inspection_id, r.status, r.rag, 1 FROM tracker_recommendation r
        WHERE r.finding_id = NEW.id
        ON CONFLICT(organisation_id, inspection_id, status, rag) DO UPDATE SET n = n + 1;
    UPDATE tracker_themecount SET n = n - 1
        WHERE OLD.kind <> 'strength' AND inspection_id = OLD.inspection_id
        AND theme_id IN (SELECT theme_id FROM tracker_finding_themes WHERE finding_id = OLD.id);
    INSERT INTO tracker_themecount(inspection_id, theme_id, n)
        SELECT NEW.inspection_id, ft.theme_id, 1 FROM tracker_finding_themes ft
        WHERE ft.finding_id = NEW.id AND NEW.kind <> 'strength'
        ON CONFLICT(inspection_id, theme_id) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER tracker_counts_theme_insert AFTER INSERT ON tracker_finding_themes BEGIN
    INSERT INTO tracker_themecount(inspection_id, theme_id, n)
        SELECT f.inspection_id, NEW.theme_id, 1 FROM tracker_finding f
        WHERE f.id = NEW.finding_id AND f.kind <> 'strength'
        ON CONFLICT(inspection_id, theme_id) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER tracker_counts_theme_delete AFTER DELETE ON tracker_finding_themes BEGIN
    UPDATE tracker_themecount SET n = n - 1 WHERE theme_id = OLD.theme_id AND inspection_id =
        (SELECT f.inspection_id FROM tracker_finding f WHERE f.id = OLD.finding_id AND f.kind <> 'strength');
    END""",
    *_FILL,
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]

# A recommendation counts once under each theme of its finding.
_THEME_STATUS_ADD = """INSERT INTO tracker_themestatuscount(organisation_id, theme_id, status, next_review_due, n)
    SELECT NEW.organisation_id, ft.theme_id, NEW.status, NEW.next_review_due, 1 FROM tracker_finding_themes ft
    WHERE ft.finding_id = NEW.finding_id
    ON CONFLICT(organisation_id, theme_id, status, next_review_due) DO UPDATE SET n = n + 1;"""
# Each statement names the whole key, so that it seeks in the unique index: a DELETE of "n = 0" under the
# organisation alone read all its rows, and made a bulk update of 5,000 recommendations take 5 s, not 0.1 s.
_THEME_STATUS_REMOVE = """UPDATE tracker_themestatuscount SET n = n - 1
    WHERE organisation_id = OLD.organisation_id AND status = OLD.status AND next_review_due = OLD.next_review_due
    AND theme_id IN (SELECT theme_id FROM tracker_finding_themes WHERE finding_id = OLD.finding_id);
    DELETE FROM tracker_themestatuscount
    WHERE organisation_id = OLD.organisation_id AND status = OLD.status AND next_review_due = OLD.next_review_due
    AND theme_id IN (SELECT theme_id FROM tracker_finding_themes WHERE finding_id = OLD.finding_id) AND n = 0;"""
_THEME_STATUS_FILL = [
    "DELETE FROM tracker_themestatuscount",
    """INSERT INTO tracker_themestatuscount(organisation_id, theme_id, status, next_review_due, n)
    SELECT r.organisation_id, ft.theme_id, r.status, r.next_review_due, COUNT(*)
    FROM tracker_recommendation r JOIN tracker_finding_themes ft ON ft.finding_id = r.finding_id
    GROUP BY r.organisation_id, ft.theme_id, r.status, r.next_review_due""",
]
SQLITE_THEME_STATUS = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in THEME_STATUS_TRIGGERS),
    f"""CREATE TRIGGER tracker_counts_themestatus_rec_insert AFTER INSERT ON tracker_recommendation
    BEGIN {_THEME_STATUS_ADD} END""",
    f"""CREATE TRIGGER tracker_counts_themestatus_rec_delete AFTER DELETE ON tracker_recommendation
    BEGIN {_THEME_STATUS_REMOVE} END""",
    f"""CREATE TRIGGER tracker_counts_themestatus_rec_update
    AFTER UPDATE OF status, next_review_due, finding_id, organisation_id ON tracker_recommendation
    WHEN OLD.status IS NOT NEW.status OR OLD.next_review_due IS NOT NEW.next_review_due
        OR OLD.finding_id IS NOT NEW.finding_id OR OLD.organisation_id IS NOT NEW.organisation_id
    BEGIN {_THEME_STATUS_REMOVE} {_THEME_STATUS_ADD} END""",
    """CREATE TRIGGER tracker_counts_themestatus_link_insert AFTER INSERT ON tracker_finding_themes BEGIN
    INSERT INTO tracker_themestatuscount(organisation_id, theme_id, status, next_review_due, n)
        SELECT r.organisation_id, NEW.theme_id, r.status, r.next_review_due, 1 FROM tracker_recommendation r
        WHERE r.finding_id = NEW.finding_id
        ON CONFLICT(organisation_id, theme_id, status, next_review_due) DO UPDATE SET n = n + 1;
    END""",
    # A finding has at most one recommendation (one to one): each "= (SELECT ...)" is that one's value, and a
    # value for each column seeks in the unique index (a row-value IN read every row of the theme: 2 s for
    # 5,000 links).
    """CREATE TRIGGER tracker_counts_themestatus_link_delete AFTER DELETE ON tracker_finding_themes BEGIN
    UPDATE tracker_themestatuscount SET n = n - 1 WHERE theme_id = OLD.theme_id
        AND organisation_id = (SELECT organisation_id FROM tracker_recommendation WHERE finding_id = OLD.finding_id)
        AND status = (SELECT status FROM tracker_recommendation WHERE finding_id = OLD.finding_id)
        AND next_review_due = (SELECT next_review_due FROM tracker_recommendation WHERE finding_id = OLD.finding_id);
    DELETE FROM tracker_themestatuscount WHERE theme_id = OLD.theme_id AND n = 0
        AND organisation_id = (SELECT organisation_id FROM tracker_recommendation WHERE finding_id = OLD.finding_id)
        AND status = (SELECT status FROM tracker_recommendation WHERE finding_id = OLD.finding_id)
        AND next_review_due = (SELECT next_review_due FROM tracker_recommendation WHERE finding_id = OLD.finding_id);
    END""",
    *_THEME_STATUS_FILL,
]
SQLITE_THEME_STATUS_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name in THEME_STATUS_TRIGGERS]

POSTGRESQL = [
    # Add ``delta`` to one counter row, making it if it is not there yet.
    """CREATE OR REPLACE FUNCTION tracker_counts_add(org bigint, insp bigint, st text, rg text, delta integer)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF insp IS NULL THEN RETURN; END IF;
        INSERT INTO tracker_recommendationcount(organisation_id, inspection_id, status, rag, n)
        VALUES (org, insp, st, rg, delta)
        ON CONFLICT (organisation_id, inspection_id, status, rag)
        DO UPDATE SET n = tracker_recommendationcount.n + EXCLUDED.n;
    END $$""",
    """CREATE OR REPLACE FUNCTION tracker_counts_theme_add(insp bigint, thm bigint, delta integer)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF insp IS NULL THEN RETURN; END IF;
        INSERT INTO tracker_themecount(inspection_id, theme_id, n) VALUES (insp, thm, delta)
        ON CONFLICT (inspection_id, theme_id) DO UPDATE SET n = tracker_themecount.n + EXCLUDED.n;
    END $$""",
    """CREATE OR REPLACE FUNCTION tracker_counts_rec() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        old_insp bigint;
        new_insp bigint;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            SELECT inspection_id INTO old_insp FROM tracker_finding WHERE id = OLD.finding_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT inspection_id INTO new_insp FROM tracker_finding WHERE id = NEW.finding_id;
        END IF;
        IF TG_OP = 'INSERT' THEN
            PERFORM tracker_counts_add(NEW.organisation_id, new_insp, NEW.status, NEW.rag, 1);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM tracker_counts_add(OLD.organisation_id, old_insp, OLD.status, OLD.rag, -1);
        -- The two rows in one order (by key), whichever way the recommendation moved: no deadlock.
        ELSIF (OLD.organisation_id, old_insp, OLD.status, OLD.rag) < (NEW.organisation_id, new_insp, NEW.status, NEW.rag)
        THEN
            PERFORM tracker_counts_add(OLD.organisation_id, old_insp, OLD.status, OLD.rag, -1);
            PERFORM tracker_counts_add(NEW.organisation_id, new_insp, NEW.status, NEW.rag, 1);
        ELSE
            PERFORM tracker_counts_add(NEW.organisation_id, new_insp, NEW.status, NEW.rag, 1);
            PERFORM tracker_counts_add(OLD.organisation_id, old_insp, OLD.status, OLD.rag, -1);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION tracker_counts_finding() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r record;
    BEGIN
        FOR r IN SELECT organisation_id, status, rag FROM tracker_recommendation WHERE finding_id = OLD.id LOOP
            PERFORM tracker_counts_add(r.organisation_id, OLD.inspection_id, r.status, r.rag, -1);
            PERFORM tracker_counts_add(r.organisation_id, NEW.inspection_id, r.status, r.rag, 1);
        END LOOP;
        FOR r IN SELECT theme_id FROM tracker_finding_themes WHERE finding_id = OLD.id LOOP
            IF OLD.kind <> 'strength' THEN
                PERFORM tracker_counts_theme_add(OLD.inspection_id, r.theme_id, -1);
            END IF;
            IF NEW.kind <> 'strength' THEN
                PERFORM tracker_counts_theme_add(NEW.inspection_id, r.theme_id, 1);
            END IF;
        END LOOP;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION tracker_counts_theme() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        insp bigint;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT inspection_id INTO insp FROM tracker_finding WHERE id = NEW.finding_id AND kind <> 'strength';
            PERFORM tracker_counts_theme_add(insp, NEW.theme_id, 1);
        ELSE
            SELECT inspection_id INTO insp FROM tracker_finding WHERE id = OLD.finding_id AND kind <> 'strength';
            PERFORM tracker_counts_theme_add(insp, OLD.theme_id, -1);
        END IF;
        RETURN NULL;
    END $$""",
    *(
        f"DROP TRIGGER IF EXISTS {name} ON {table}"
        for name, table in zip(
            TRIGGERS,
            (
                "tracker_recommendation",
                "tracker_recommendation",
                "tracker_recommendation",
                "tracker_finding",
                "tracker_finding_themes",
                "tracker_finding_themes",
            ),
            strict=True,
        )
    ),
    """CREATE TRIGGER tracker_counts_rec_insert AFTER INSERT ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_rec()""",
    """CREATE TRIGGER tracker_counts_rec_delete AFTER DELETE ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_rec()""",
    """CREATE TRIGGER tracker_counts_rec_update AFTER UPDATE OF status, rag, finding_id, organisation_id
    ON tracker_recommendation FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.rag IS DISTINCT FROM NEW.rag
        OR OLD.finding_id IS DISTINCT FROM NEW.finding_id OR OLD.organisation_id IS DISTINCT FROM NEW.organisation_id)
    EXECUTE FUNCTION tracker_counts_rec()""",
    """CREATE TRIGGER tracker_counts_finding_update AFTER UPDATE OF inspection_id, kind ON tracker_finding
    FOR EACH ROW WHEN (OLD.inspection_id IS DISTINCT FROM NEW.inspection_id OR OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION tracker_counts_finding()""",
    """CREATE TRIGGER tracker_counts_theme_insert AFTER INSERT ON tracker_finding_themes
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme()""",
    """CREATE TRIGGER tracker_counts_theme_delete AFTER DELETE ON tracker_finding_themes
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme()""",
    *_FILL,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS tracker_counts_rec_insert ON tracker_recommendation",
    "DROP TRIGGER IF EXISTS tracker_counts_rec_update ON tracker_recommendation",
    "DROP TRIGGER IF EXISTS tracker_counts_rec_delete ON tracker_recommendation",
    "DROP TRIGGER IF EXISTS tracker_counts_finding_update ON tracker_finding",
    "DROP TRIGGER IF EXISTS tracker_counts_theme_insert ON tracker_finding_themes",
    "DROP TRIGGER IF EXISTS tracker_counts_theme_delete ON tracker_finding_themes",
    "DROP FUNCTION IF EXISTS tracker_counts_rec()",
    "DROP FUNCTION IF EXISTS tracker_counts_finding()",
    "DROP FUNCTION IF EXISTS tracker_counts_theme()",
    "DROP FUNCTION IF EXISTS tracker_counts_add(bigint, bigint, text, text, integer)",
    "DROP FUNCTION IF EXISTS tracker_counts_theme_add(bigint, bigint, integer)",
]


POSTGRESQL_THEME_STATUS = [
    # Add ``delta`` to one counter row, making it if it is not there yet and deleting it at zero.
    """CREATE OR REPLACE FUNCTION tracker_counts_theme_status_add(org bigint, thm bigint, st text, due date, delta integer)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO tracker_themestatuscount(organisation_id, theme_id, status, next_review_due, n)
        VALUES (org, thm, st, due, delta)
        ON CONFLICT (organisation_id, theme_id, status, next_review_due)
        DO UPDATE SET n = tracker_themestatuscount.n + EXCLUDED.n;
        IF delta < 0 THEN
            DELETE FROM tracker_themestatuscount
            WHERE organisation_id = org AND theme_id = thm AND status = st AND next_review_due = due AND n = 0;
        END IF;
    END $$""",
    # The rows a recommendation leaves and joins, netted (a finding moved between two with a theme in common
    # leaves that theme's row alone) and in key order whichever way it moved: two writers never deadlock.
    """CREATE OR REPLACE FUNCTION tracker_counts_theme_status_rec() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r record;
    BEGIN
        FOR r IN
            SELECT org, thm, st, due, SUM(delta)::integer AS delta FROM (
                SELECT OLD.organisation_id AS org, ft.theme_id AS thm, OLD.status AS st,
                    OLD.next_review_due AS due, -1 AS delta
                FROM tracker_finding_themes ft WHERE TG_OP <> 'INSERT' AND ft.finding_id = OLD.finding_id
                UNION ALL
                SELECT NEW.organisation_id, ft.theme_id, NEW.status, NEW.next_review_due, 1
                FROM tracker_finding_themes ft WHERE TG_OP <> 'DELETE' AND ft.finding_id = NEW.finding_id
            ) moves
            GROUP BY org, thm, st, due HAVING SUM(delta) <> 0 ORDER BY org, thm, st, due
        LOOP
            PERFORM tracker_counts_theme_status_add(r.org, r.thm, r.st, r.due, r.delta);
        END LOOP;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION tracker_counts_theme_status_link() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r record;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            FOR r IN SELECT organisation_id, status, next_review_due FROM tracker_recommendation
                WHERE finding_id = NEW.finding_id LOOP
                PERFORM tracker_counts_theme_status_add(r.organisation_id, NEW.theme_id, r.status, r.next_review_due, 1);
            END LOOP;
        ELSE
            FOR r IN SELECT organisation_id, status, next_review_due FROM tracker_recommendation
                WHERE finding_id = OLD.finding_id LOOP
                PERFORM tracker_counts_theme_status_add(r.organisation_id, OLD.theme_id, r.status, r.next_review_due, -1);
            END LOOP;
        END IF;
        RETURN NULL;
    END $$""",
    *(
        f"DROP TRIGGER IF EXISTS {name} ON {table}"
        for name, table in zip(THEME_STATUS_TRIGGERS, _THEME_STATUS_TABLES, strict=True)
    ),
    """CREATE TRIGGER tracker_counts_themestatus_rec_insert AFTER INSERT ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme_status_rec()""",
    """CREATE TRIGGER tracker_counts_themestatus_rec_delete AFTER DELETE ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme_status_rec()""",
    """CREATE TRIGGER tracker_counts_themestatus_rec_update
    AFTER UPDATE OF status, next_review_due, finding_id, organisation_id ON tracker_recommendation FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.next_review_due IS DISTINCT FROM NEW.next_review_due
        OR OLD.finding_id IS DISTINCT FROM NEW.finding_id OR OLD.organisation_id IS DISTINCT FROM NEW.organisation_id)
    EXECUTE FUNCTION tracker_counts_theme_status_rec()""",
    """CREATE TRIGGER tracker_counts_themestatus_link_insert AFTER INSERT ON tracker_finding_themes
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme_status_link()""",
    """CREATE TRIGGER tracker_counts_themestatus_link_delete AFTER DELETE ON tracker_finding_themes
    FOR EACH ROW EXECUTE FUNCTION tracker_counts_theme_status_link()""",
    *_THEME_STATUS_FILL,
]
POSTGRESQL_THEME_STATUS_REVERSE = [
    *(
        f"DROP TRIGGER IF EXISTS {name} ON {table}"
        for name, table in zip(THEME_STATUS_TRIGGERS, _THEME_STATUS_TABLES, strict=True)
    ),
    "DROP FUNCTION IF EXISTS tracker_counts_theme_status_rec()",
    "DROP FUNCTION IF EXISTS tracker_counts_theme_status_link()",
    "DROP FUNCTION IF EXISTS tracker_counts_theme_status_add(bigint, bigint, text, date, integer)",
]

# (what 0016_scale_counts made, what 0022_theme added), each database's install and uninstall.
_INSTALL = {"sqlite": (SQLITE, SQLITE_THEME_STATUS), "postgresql": (POSTGRESQL, POSTGRESQL_THEME_STATUS)}
_UNINSTALL = {
    "sqlite": (SQLITE_REVERSE, SQLITE_THEME_STATUS_REVERSE),
    "postgresql": (POSTGRESQL_REVERSE, POSTGRESQL_THEME_STATUS_REVERSE),
}


def install(schema_editor, *, theme_status: bool = True) -> None:
    """Create (or re-create) the triggers and fill the tables from the rows; called by migrations.
    ``theme_status=False`` leaves out ThemeStatusCount's, for 0016_scale_counts, which is older than its table."""
    by_inspection, by_theme_status = _INSTALL.get(schema_editor.connection.vendor, ([], []))
    for sql in [*by_inspection, *(by_theme_status if theme_status else [])]:
        schema_editor.execute(sql)


def uninstall(schema_editor, *, theme_status_only: bool = False) -> None:
    by_inspection, by_theme_status = _UNINSTALL.get(schema_editor.connection.vendor, ([], []))
    for sql in [*([] if theme_status_only else by_inspection), *by_theme_status]:
        schema_editor.execute(sql)


def kept() -> bool:
    """Whether this database keeps the counts (SQLite and PostgreSQL do; any other counts afresh)."""
    return connection.vendor in ("sqlite", "postgresql")


def kept_for(user) -> QuerySet[RecommendationCount] | None:
    """The organisation's kept counts by status and RAG, when they are what ``user`` sees (the whole
    organisation), else None: count over what they see instead."""
    from tracker import permissions

    if not (kept() and permissions.sees_whole_organisation(user)):
        return None
    return RecommendationCount.objects.filter(organisation_id=user.organisation_id)


def counted(rows: QuerySet, key: str, total) -> QuerySet:
    """One row, (key, total over ``rows``): a part of a UNION ALL of counts (``union``)."""
    return rows.order_by().annotate(key=Value(key)).values("key").annotate(n=total).values_list("key", "n")


class Member(NamedTuple):
    """One SELECT of a UNION ALL (``union_all``), as SQL and its parameters."""

    sql: str
    params: tuple


def member(queryset: QuerySet) -> Member | None:
    """A queryset as a member of a UNION ALL; None when its condition is empty by construction (Django
    compiles no SQL for it: it matches nothing)."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return None
    return Member(sql, tuple(params))


def up_to(rows: QuerySet, key: str, limit: int) -> Member | None:
    """One row, (key, how many ``rows`` there are, counting no further than ``limit``).

    Counted over the first ``limit`` ids themselves: "the rows whose id is among them", the form a
    queryset can take, looks each id up again (1.5 ms a part at 1,001 on PostgreSQL)."""
    ids = member(rows.order_by().values("pk")[:limit])
    # Django's SQL of the queryset, with the values as parameters.
    return ids and Member(f"SELECT %s, COUNT(*) FROM ({ids.sql}) AS up_to", (key, *ids.params))  # noqa: S608


def first(rows: QuerySet, key: str, limit: int) -> Member | None:
    """(key, id) of each of the first ``limit`` of ``rows`` in their order (an order not kept by the union)."""
    ids = member(rows.values("pk")[:limit])
    return ids and Member(f"SELECT %s, chosen.pk FROM ({ids.sql}) AS chosen", (key, *ids.params))  # noqa: S608


def union_all(parts: Iterable[QuerySet | Member | None]) -> list[tuple]:
    """The rows of one UNION ALL of ``parts`` (querysets without order or limit, or members; None is left
    out), read in one query. Each member's order and limit is inside its own subquery: SQLite allows
    neither on a member of a compound statement."""
    members = [part if isinstance(part, Member) or part is None else member(part) for part in parts]
    members = [m for m in members if m is not None]
    if not members:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(m.sql for m in members), [p for m in members for p in m.params])
        return cursor.fetchall()


def union(parts: Iterable[QuerySet | Member | None], keys: Iterable[str]) -> dict[str, int]:
    """Every key's count from one UNION ALL of ``counted`` or ``up_to`` parts; 0 for a part left out
    because its condition is empty by construction."""
    found = dict(union_all(parts))
    return {key: found.get(key, 0) for key in keys}


def by_inspection(organisation_id: int, inspection_ids: Iterable[int] | None = None) -> list[tuple[int, str, str, int]]:
    """(inspection id, status, RAG, how many) of an organisation's recommendations, from the kept counts."""
    rows = RecommendationCount.objects.filter(organisation_id=organisation_id, n__gt=0)
    if inspection_ids is not None:
        rows = rows.filter(inspection_id__in=list(inspection_ids))
    return list(rows.values_list("inspection_id", "status", "rag", "n"))


_OVERDUE = "(overdue)"  # no status is called this


def by_status(organisation_id: int, today: dt.date) -> tuple[dict[str, int], int]:
    """How many of an organisation's recommendations have each status, and how many are overdue: the kept
    counts, and the overdue ones (which depend on today) counted from the index on (organisation, status,
    review date), in one query. A grouped count of every recommendation cost 11 ms at 50,000 on PostgreSQL."""
    return by_status_of(
        RecommendationCount.objects.filter(organisation_id=organisation_id),
        Recommendation.objects.for_organisation(organisation_id).overdue(today),
    )


def by_status_of(kept: QuerySet[RecommendationCount], overdue: QuerySet[Recommendation]) -> tuple[dict[str, int], int]:
    """How many recommendations the ``kept`` rows count by status, and how many ``overdue`` holds, in one
    query: the list filtered by status or RAG reads its counts this way (the kept rows have both columns)."""
    by = kept.filter(n__gt=0).order_by().values_list("status").annotate(n=Sum("n"))
    counts = dict(by.union(counted(overdue, _OVERDUE, Count("pk")), all=True))
    return counts, counts.pop(_OVERDUE, 0)


def in_theme(organisation_id: int, theme_id: int) -> QuerySet[ThemeStatusCount]:
    """The kept rows of the organisation's recommendations with a theme: each a status, a review date and how
    many. A filter on those two columns (the list's status, overdue and due dates) selects among them as among
    the recommendations, since the columns have the same names."""
    return ThemeStatusCount.objects.filter(organisation_id=organisation_id, theme_id=theme_id)


def by_status_in(rows: QuerySet[ThemeStatusCount], today: dt.date) -> tuple[dict[str, int], int]:
    """``by_status`` of the recommendations these kept rows count, in one query: overdue is
    ``Recommendation.overdue_q`` applied to the rows (same field names, so a change to the rule that reads
    another column fails loudly here rather than counting something else)."""
    grouped = (
        rows.order_by()
        .values_list("status")
        .annotate(total=Sum("n"), late=Coalesce(Sum("n", filter=Recommendation.overdue_q(today)), 0))
    )
    counts, overdue = {}, 0
    for status, n, late in grouped:
        counts[status] = n
        overdue += late
    return counts, overdue


def themes_by_inspection(inspection_ids: Iterable[int]) -> list[tuple[int, int, int, str, str]]:
    """(theme id, inspection id, findings, theme slug, theme name) for these inspections, strengths aside,
    from the kept counts."""
    rows = ThemeCount.objects.filter(inspection_id__in=list(inspection_ids), n__gt=0)
    return list(rows.values_list("theme_id", "inspection_id", "n", "theme__slug", "theme__name"))


# The same figures counted afresh from the rows: what the kept ones must always equal (tests), and the
# answer on a database without the triggers.


def fresh_by_inspection(scope: QuerySet[Recommendation]) -> list[tuple[int, str, str, int]]:
    rows = scope.order_by().values_list("finding__inspection_id", "status", "rag").annotate(n=Count("pk"))
    return [tuple(row) for row in rows]


def fresh_themes_by_inspection(inspection_ids: Iterable[int]) -> list[tuple[int, int, int]]:
    rows = (
        Finding.objects.filter(inspection_id__in=list(inspection_ids), themes__isnull=False)
        .exclude(kind=Finding.Kind.STRENGTH)
        .order_by()
        .values_list("themes", "inspection_id")
        .annotate(n=Count("pk"))
    )
    return [tuple(row) for row in rows]
