"""Columns kept on each recommendation by database triggers, so that home and the lists read them from the row.

Two dates, for home (migration 0021_inbox_kept):

- ``submitted_at``: when it was last submitted for assurance (its latest "submitted" event). "Awaiting your
  assurance" lists the longest waiting first; read from the events, that sorted every item awaiting
  (6 ms at 50,000 on SQLite, 9 on PostgreSQL).
- ``stuck_from``: when it counts as stuck, two review intervals after its last activity (its latest progress
  update, else its creation). "Stuck" is then ``stuck_from < now``; read from the updates, it needed the
  review intervals in use first and every open item's updates (10 ms and 17 ms).

The facts a list's decisions read (``policy.with_facts``, migration 0023_kept_facts), which were seven
subqueries per row, a third of the API list's time at 100,000 on PostgreSQL:

- ``evidence_live``, ``evidence_live_outcome``, ``evidence_pending``, ``evidence_accepted``,
  ``evidence_accepted_outcome``: its evidence counted as ``policy._EVIDENCE_COUNTS`` counts it;
- ``opened_at``: when it was last opened (its latest "reopened" event, else its creation; ``policy._opened_at``);
- ``outcome_gate_overridden``: whether an outcome override was recorded since then.

And with them (the same migration) ``inspection``, its finding's inspection: a copy, as the organisation is, so
that the dashboard of one inspection reads its counts and lists from the recommendations' indexes instead of
joining every finding of the inspection (at 50,000 on PostgreSQL, 40 of its 90 ms).

One recommendation's own page and every workflow guard still count these afresh, under the row's lock
(``policy.Facts``): a list reads the kept ones, and ``tests/core/test_policy.py`` checks both decide alike.

Triggers rather than the workflow, as for ``tracker.counts``: events, updates, evidence and recommendations
are also written by imports' bulk inserts, the admin, seeding and queryset updates. The application never
writes these columns (a stale instance saved would put back an old value), so the triggers recompute them
all on every write of the recommendation itself too. ``tests/web/test_kept_dates.py`` checks, after every kind
of write, that they equal the values computed afresh. None of them is history: each follows from rows that are.

Made by migrations through ``install``, which also fills them. SQLite drops these triggers when a migration
remakes ``tracker_recommendation``, ``tracker_recommendationevent``, ``tracker_progressupdate``,
``tracker_evidence`` or ``tracker_finding``: such a migration must call ``install`` again (a test checks they exist).
"""

from __future__ import annotations

# The triggers of both versions: every install drops them all first.
TRIGGERS = (
    "tracker_kept_rec_insert",
    "tracker_kept_rec_update",
    "tracker_kept_event_insert",
    "tracker_kept_event_update",
    "tracker_kept_event_delete",
    "tracker_kept_update_insert",
    "tracker_kept_update_update",
    "tracker_kept_update_delete",
    "tracker_kept_evidence_insert",
    "tracker_kept_evidence_update",
    "tracker_kept_evidence_delete",
    "tracker_kept_finding_update",
)

# Literal SQL, no interpolation of input; {rec} is the recommendation's row (NEW or the table), never input.
# The actions, verdicts and category are RecommendationEvent.Action's and Evidence's values (a test checks).
_LATEST = """(SELECT max(e.at) FROM tracker_recommendationevent e
    WHERE e.recommendation_id = {{rec}}.id AND e.action = '{action}')"""
_SUBMITTED = _LATEST.format(action="submitted")
_LAST_UPDATE = "(SELECT max(u.created_at) FROM tracker_progressupdate u WHERE u.recommendation_id = {rec}.id)"
_OPENED = f"COALESCE({_LATEST.format(action='reopened')}, {{rec}}.created_at)"
_OVERRIDDEN = f"""EXISTS (SELECT 1 FROM tracker_recommendationevent o
    WHERE o.recommendation_id = {{rec}}.id AND o.action = 'outcome_gate_overridden' AND o.at >= {_OPENED})"""  # noqa: S608


def _evidence(condition: str) -> str:
    return f"(SELECT count(*) FROM tracker_evidence v WHERE v.recommendation_id = {{rec}}.id AND {condition})"  # noqa: S608


_FACTS = {
    "evidence_live": _evidence("v.verdict <> 'rejected'"),
    "evidence_live_outcome": _evidence("v.verdict <> 'rejected' AND v.category = 'outcome'"),
    "evidence_pending": _evidence("v.verdict = 'pending'"),
    "evidence_accepted": _evidence("v.verdict = 'accepted'"),
    "evidence_accepted_outcome": _evidence("v.verdict = 'accepted' AND v.category = 'outcome'"),
    "opened_at": _OPENED,
    "outcome_gate_overridden": _OVERRIDDEN,
    # Not a fact but a copy, as the organisation is: the finding's inspection, for the dashboard of one.
    "inspection_id": "(SELECT f.inspection_id FROM tracker_finding f WHERE f.id = {rec}.finding_id)",
}
# The events that move a kept column.
_ACTIONS = ("submitted",)
_FACT_ACTIONS = ("submitted", "reopened", "outcome_gate_overridden")

# SQLite keeps a datetime as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]': whole days added with datetime(), which
# drops the fraction of a second, and the fraction put back as it was, so that the date is exact.
_SQLITE_ACTIVITY = f"COALESCE({_LAST_UPDATE}, {{rec}}.created_at)"
_SQLITE_STUCK = (
    f"datetime({_SQLITE_ACTIVITY}, '+' || (2 * {{rec}}.review_interval_days) || ' days')"
    f" || substr({_SQLITE_ACTIVITY}, 20)"
)


def _sqlite_columns(facts: bool) -> dict[str, str]:
    return {"submitted_at": _SUBMITTED, "stuck_from": _SQLITE_STUCK, **(_FACTS if facts else {})}


def _one_of(row: str, actions: tuple[str, ...]) -> str:
    return f"{row}.action IN ({', '.join(repr(action) for action in actions)})"


def _sqlite(facts: bool) -> list[str]:
    columns = _sqlite_columns(facts)
    table = "tracker_recommendation"
    assignments = ", ".join(f"{name} = {expression.format(rec=table)}" for name, expression in columns.items())
    fill = f"UPDATE {table} SET {assignments}"  # noqa: S608

    def recompute(rec_id: str) -> str:
        """The statement a trigger runs for one recommendation (``rec_id``: NEW's or OLD's column, never input)."""
        return f"{fill} WHERE {table}.id = {rec_id};"

    actions = _FACT_ACTIONS if facts else _ACTIONS
    differs = "\n        OR ".join(
        f"NEW.{name} IS NOT {expression.format(rec='NEW')}" for name, expression in columns.items()
    )
    statements = [
        *(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
        f"CREATE TRIGGER tracker_kept_rec_insert AFTER INSERT ON {table} BEGIN {recompute('NEW.id')} END",
        # Only when what was written differs from what it should be: so the trigger's own UPDATE stops here.
        f"""CREATE TRIGGER tracker_kept_rec_update AFTER UPDATE ON {table}
    WHEN {differs}
    BEGIN {recompute("NEW.id")} END""",
        f"CREATE TRIGGER tracker_kept_event_insert AFTER INSERT ON tracker_recommendationevent"
        f" WHEN {_one_of('NEW', actions)} BEGIN {recompute('NEW.recommendation_id')} END",
        f"CREATE TRIGGER tracker_kept_event_update AFTER UPDATE ON tracker_recommendationevent"
        f" WHEN {_one_of('NEW', actions)} OR {_one_of('OLD', actions)}"
        f" BEGIN {recompute('OLD.recommendation_id')} {recompute('NEW.recommendation_id')} END",
        f"CREATE TRIGGER tracker_kept_event_delete AFTER DELETE ON tracker_recommendationevent"
        f" WHEN {_one_of('OLD', actions)} BEGIN {recompute('OLD.recommendation_id')} END",
    ]
    for child in ("update", *(("evidence",) if facts else ())):
        source = {"update": "tracker_progressupdate", "evidence": "tracker_evidence"}[child]
        statements += [
            f"CREATE TRIGGER tracker_kept_{child}_insert AFTER INSERT ON {source}"
            f" BEGIN {recompute('NEW.recommendation_id')} END",
            f"CREATE TRIGGER tracker_kept_{child}_update AFTER UPDATE ON {source}"
            f" BEGIN {recompute('OLD.recommendation_id')} {recompute('NEW.recommendation_id')} END",
            f"CREATE TRIGGER tracker_kept_{child}_delete AFTER DELETE ON {source}"
            f" BEGIN {recompute('OLD.recommendation_id')} END",
        ]
    if facts:
        statements.append(
            "CREATE TRIGGER tracker_kept_finding_update AFTER UPDATE OF inspection_id ON tracker_finding"
            f" BEGIN {fill} WHERE {table}.finding_id = NEW.id; END"
        )
    return [*statements, fill]


# PostgreSQL sets every column in a BEFORE trigger on the recommendation, so that writing it costs no second
# UPDATE; an event, an update or evidence touches its recommendation's row, which that trigger recomputes.
# Hours, not days: a day in the session's time zone can be 23 or 25 hours long.
_PG_TABLES = {
    "rec": "tracker_recommendation",
    "event": "tracker_recommendationevent",
    "update": "tracker_progressupdate",
    "evidence": "tracker_evidence",
    "finding": "tracker_finding",
}


def _pg_table(trigger: str) -> str:
    return _PG_TABLES[trigger.split("_")[2]]


def _postgresql(facts: bool) -> list[str]:
    sets = "".join(f"\n        NEW.{name} := {expression.format(rec='NEW')};" for name, expression in _FACTS.items())
    actions = _FACT_ACTIONS if facts else _ACTIONS
    statements = [
        *(f"DROP TRIGGER IF EXISTS {name} ON {_pg_table(name)}" for name in TRIGGERS),
        f"""CREATE OR REPLACE FUNCTION tracker_kept_rec() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.submitted_at := {_SUBMITTED.format(rec="NEW")};
        -- An interval out of range is refused by the table's check, after this trigger: it must not
        -- overflow here first, which would say "integer out of range" instead.
        NEW.stuck_from := CASE WHEN NEW.review_interval_days <= 1000000 THEN
            COALESCE({_LAST_UPDATE.format(rec="NEW")}, NEW.created_at)
            + make_interval(hours => 48 * NEW.review_interval_days) END;{sets if facts else ""}
        RETURN NEW;
    END $$""",
        # Touch the row (a no-op write of one column); tracker_kept_rec computes every column as it is written.
        """CREATE OR REPLACE FUNCTION tracker_kept_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE tracker_recommendation SET stuck_from = NULL WHERE id = OLD.recommendation_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE tracker_recommendation SET stuck_from = NULL WHERE id = NEW.recommendation_id;
        END IF;
        RETURN NULL;
    END $$""",
        """CREATE TRIGGER tracker_kept_rec_insert BEFORE INSERT ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_rec()""",
        """CREATE TRIGGER tracker_kept_rec_update BEFORE UPDATE ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_rec()""",
        f"""CREATE TRIGGER tracker_kept_event_insert AFTER INSERT ON tracker_recommendationevent
    FOR EACH ROW WHEN ({_one_of("NEW", actions)}) EXECUTE FUNCTION tracker_kept_touch()""",
        f"""CREATE TRIGGER tracker_kept_event_update AFTER UPDATE ON tracker_recommendationevent
    FOR EACH ROW WHEN ({_one_of("NEW", actions)} OR {_one_of("OLD", actions)}) EXECUTE FUNCTION tracker_kept_touch()""",
        f"""CREATE TRIGGER tracker_kept_event_delete AFTER DELETE ON tracker_recommendationevent
    FOR EACH ROW WHEN ({_one_of("OLD", actions)}) EXECUTE FUNCTION tracker_kept_touch()""",
    ]
    for child in ("update", *(("evidence",) if facts else ())):
        statements += [
            f"""CREATE TRIGGER tracker_kept_{child}_{operation} AFTER {operation.upper()} ON {_PG_TABLES[child]}
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_touch()"""
            for operation in ("insert", "update", "delete")
        ]
    if facts:
        statements += [
            """CREATE OR REPLACE FUNCTION tracker_kept_finding() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE tracker_recommendation SET stuck_from = NULL WHERE finding_id = NEW.id;
        RETURN NULL;
    END $$""",
            """CREATE TRIGGER tracker_kept_finding_update AFTER UPDATE OF inspection_id ON tracker_finding
    FOR EACH ROW WHEN (OLD.inspection_id IS DISTINCT FROM NEW.inspection_id) EXECUTE FUNCTION tracker_kept_finding()""",
        ]
    return [*statements, "UPDATE tracker_recommendation SET stuck_from = NULL"]


POSTGRESQL_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {_pg_table(name)}" for name in TRIGGERS),
    "DROP FUNCTION IF EXISTS tracker_kept_rec()",
    "DROP FUNCTION IF EXISTS tracker_kept_touch()",
    "DROP FUNCTION IF EXISTS tracker_kept_finding()",
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]


def install(schema_editor, *, facts: bool = True) -> None:
    """Create (or re-create) the triggers and fill the columns from the rows; called by migrations.

    ``facts=False`` is the version of migration 0021, before the facts' columns existed (and the one that
    migration 0023 goes back to when it is reversed)."""
    build = {"sqlite": _sqlite, "postgresql": _postgresql}.get(schema_editor.connection.vendor)
    for sql in build(facts) if build else []:
        schema_editor.execute(sql)


def analyse(schema_editor) -> None:
    """Refresh SQLite's statistics of the recommendations, for a migration that adds indexes to them.

    SQLite plans from ANALYZE's statistics once it was ever run, and new indexes have none: without this, the
    lead's home took 300 ms instead of 50 at 50,000. PostgreSQL's autovacuum keeps its own."""
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("ANALYZE tracker_recommendation")


def uninstall(schema_editor) -> None:
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)
