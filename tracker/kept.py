"""Two dates kept on each recommendation by database triggers, so that home reads them from an index.

- ``submitted_at``: when it was last submitted for assurance (its latest "submitted" event). "Awaiting your
  assurance" lists the longest waiting first; read from the events, that sorted every item awaiting
  (6 ms at 50,000 on SQLite, 9 on PostgreSQL).
- ``stuck_from``: when it counts as stuck, two review intervals after its last activity (its latest progress
  update, else its creation). "Stuck" is then ``stuck_from < now``; read from the updates, it needed the
  review intervals in use first and every open item's updates (10 ms and 17 ms).

Triggers rather than the workflow, as for ``tracker.counts``: events, updates and recommendations are also
written by imports' bulk inserts, the admin, seeding and queryset updates. The application never writes
these two columns (a stale instance saved would put back an old value), so the triggers recompute both on
every write of the recommendation itself too. ``tests/web/test_kept_dates.py`` checks, after every kind of
write, that they equal the dates computed afresh.

Made by migration 0021_inbox_kept through ``install``, which also fills them. SQLite drops these triggers when
a migration remakes ``tracker_recommendation``, ``tracker_recommendationevent`` or
``tracker_progressupdate``: such a migration must call ``install`` again (a test checks they exist).
"""

from __future__ import annotations

TRIGGERS = (
    "tracker_kept_rec_insert",
    "tracker_kept_rec_update",
    "tracker_kept_event_insert",
    "tracker_kept_event_update",
    "tracker_kept_event_delete",
    "tracker_kept_update_insert",
    "tracker_kept_update_update",
    "tracker_kept_update_delete",
)

# Literal SQL, no interpolation of input. 'submitted' is RecommendationEvent.Action.SUBMITTED (a test checks).
_SUBMITTED = """(SELECT max(e.at) FROM tracker_recommendationevent e
    WHERE e.recommendation_id = {rec}.id AND e.action = 'submitted')"""
_LAST_UPDATE = "(SELECT max(u.created_at) FROM tracker_progressupdate u WHERE u.recommendation_id = {rec}.id)"

# SQLite keeps a datetime as text, 'YYYY-MM-DD HH:MM:SS[.ffffff]': whole days added with datetime(), which
# drops the fraction of a second, and the fraction put back as it was, so that the date is exact.
_SQLITE_ACTIVITY = f"COALESCE({_LAST_UPDATE}, {{rec}}.created_at)"
_SQLITE_STUCK = (
    f"datetime({_SQLITE_ACTIVITY}, '+' || (2 * {{rec}}.review_interval_days) || ' days')"
    f" || substr({_SQLITE_ACTIVITY}, 20)"
)
_SQLITE_SET = f"submitted_at = {_SUBMITTED}, stuck_from = {_SQLITE_STUCK}"


_SQLITE_FILL = f"UPDATE tracker_recommendation SET {_SQLITE_SET.format(rec='tracker_recommendation')}"  # noqa: S608


def _sqlite_recompute(rec_id: str) -> str:
    """The statement a trigger runs for one recommendation (``rec_id``: NEW's or OLD's column, never input)."""
    return f"{_SQLITE_FILL} WHERE tracker_recommendation.id = {rec_id};"


SQLITE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
    "CREATE TRIGGER tracker_kept_rec_insert AFTER INSERT ON tracker_recommendation BEGIN "
    + _sqlite_recompute("NEW.id")
    + " END",
    # Only when what was written differs from what it should be: so the trigger's own UPDATE stops here.
    f"""CREATE TRIGGER tracker_kept_rec_update AFTER UPDATE ON tracker_recommendation
    WHEN NEW.submitted_at IS NOT {_SUBMITTED.format(rec="NEW")}
        OR NEW.stuck_from IS NOT {_SQLITE_STUCK.format(rec="NEW")}
    BEGIN {_sqlite_recompute("NEW.id")} END""",
    "CREATE TRIGGER tracker_kept_event_insert AFTER INSERT ON tracker_recommendationevent"
    " WHEN NEW.action = 'submitted' BEGIN " + _sqlite_recompute("NEW.recommendation_id") + " END",
    "CREATE TRIGGER tracker_kept_event_update AFTER UPDATE ON tracker_recommendationevent"
    " WHEN NEW.action = 'submitted' OR OLD.action = 'submitted' BEGIN "
    + _sqlite_recompute("OLD.recommendation_id")
    + _sqlite_recompute("NEW.recommendation_id")
    + " END",
    "CREATE TRIGGER tracker_kept_event_delete AFTER DELETE ON tracker_recommendationevent"
    " WHEN OLD.action = 'submitted' BEGIN " + _sqlite_recompute("OLD.recommendation_id") + " END",
    "CREATE TRIGGER tracker_kept_update_insert AFTER INSERT ON tracker_progressupdate BEGIN "
    + _sqlite_recompute("NEW.recommendation_id")
    + " END",
    "CREATE TRIGGER tracker_kept_update_update AFTER UPDATE ON tracker_progressupdate BEGIN "
    + _sqlite_recompute("OLD.recommendation_id")
    + _sqlite_recompute("NEW.recommendation_id")
    + " END",
    "CREATE TRIGGER tracker_kept_update_delete AFTER DELETE ON tracker_progressupdate BEGIN "
    + _sqlite_recompute("OLD.recommendation_id")
    + " END",
    _SQLITE_FILL,
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]

# PostgreSQL sets both in a BEFORE trigger on the recommendation, so that writing it costs no second
# UPDATE; an event or an update touches its recommendation's row, which that trigger recomputes. Hours,
# not days: a day in the session's time zone can be 23 or 25 hours long.
_PG_TABLES = {
    "tracker_kept_rec_insert": "tracker_recommendation",
    "tracker_kept_rec_update": "tracker_recommendation",
    "tracker_kept_event_insert": "tracker_recommendationevent",
    "tracker_kept_event_update": "tracker_recommendationevent",
    "tracker_kept_event_delete": "tracker_recommendationevent",
    "tracker_kept_update_insert": "tracker_progressupdate",
    "tracker_kept_update_update": "tracker_progressupdate",
    "tracker_kept_update_delete": "tracker_progressupdate",
}
POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION tracker_kept_rec() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.submitted_at := {_SUBMITTED.format(rec="NEW")};
        -- An interval out of range is refused by the table's check, after this trigger: it must not
        -- overflow here first, which would say "integer out of range" instead.
        NEW.stuck_from := CASE WHEN NEW.review_interval_days <= 1000000 THEN
            COALESCE({_LAST_UPDATE.format(rec="NEW")}, NEW.created_at)
            + make_interval(hours => 48 * NEW.review_interval_days) END;
        RETURN NEW;
    END $$""",
    # Touch the row (a no-op write of one column); tracker_kept_rec computes both dates as it is written.
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
    *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in _PG_TABLES.items()),
    """CREATE TRIGGER tracker_kept_rec_insert BEFORE INSERT ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_rec()""",
    """CREATE TRIGGER tracker_kept_rec_update BEFORE UPDATE ON tracker_recommendation
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_rec()""",
    """CREATE TRIGGER tracker_kept_event_insert AFTER INSERT ON tracker_recommendationevent
    FOR EACH ROW WHEN (NEW.action = 'submitted') EXECUTE FUNCTION tracker_kept_touch()""",
    """CREATE TRIGGER tracker_kept_event_update AFTER UPDATE ON tracker_recommendationevent
    FOR EACH ROW WHEN (NEW.action = 'submitted' OR OLD.action = 'submitted') EXECUTE FUNCTION tracker_kept_touch()""",
    """CREATE TRIGGER tracker_kept_event_delete AFTER DELETE ON tracker_recommendationevent
    FOR EACH ROW WHEN (OLD.action = 'submitted') EXECUTE FUNCTION tracker_kept_touch()""",
    """CREATE TRIGGER tracker_kept_update_insert AFTER INSERT ON tracker_progressupdate
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_touch()""",
    """CREATE TRIGGER tracker_kept_update_update AFTER UPDATE ON tracker_progressupdate
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_touch()""",
    """CREATE TRIGGER tracker_kept_update_delete AFTER DELETE ON tracker_progressupdate
    FOR EACH ROW EXECUTE FUNCTION tracker_kept_touch()""",
    "UPDATE tracker_recommendation SET stuck_from = NULL",
]
POSTGRESQL_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in _PG_TABLES.items()),
    "DROP FUNCTION IF EXISTS tracker_kept_rec()",
    "DROP FUNCTION IF EXISTS tracker_kept_touch()",
]


def install(schema_editor) -> None:
    """Create (or re-create) the triggers and fill both dates from the rows; called by migrations."""
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def uninstall(schema_editor) -> None:
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)
