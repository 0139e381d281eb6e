"""Reminder health: is the sweep running, is the ledger draining, does beat hold its lock?

One set of figures for the admin's health page (a lead's own organisation, or all for the operator),
the dashboard's warning and ``manage.py check_reminders`` (for an external monitor). The ledger
figures are one aggregate query over whatever rows the caller may see; the sweep is platform-wide.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from tracker import schedule
from tracker.models import Reminder, SweepRun

logger = logging.getLogger(__name__)

State = Reminder.State

# The dashboard warns once the last sweep is more than a day old; the hour's slack keeps it quiet
# while the day's own sweep (or its catch-up, minutes later) is still running.
DASHBOARD_SWEEP_AGE = dt.timedelta(hours=25)


@dataclass(frozen=True)
class BeatLock:
    """Whether a beat holds ``tracker:beat-lock``: True, False, or None when Redis cannot say."""

    held: bool | None
    holder: str = ""  # host:pid of the beat holding it
    detail: str = ""  # why it is unknown

    @property
    def label(self) -> str:
        return {True: "held", False: "not held (no beat is running)", None: "unknown"}[self.held]


def beat_lock() -> BeatLock:
    """Read beat's lock from the broker. Never raises: an unreachable Redis is "unknown"."""
    import redis

    from config.celery import BEAT_LOCK_KEY, app

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return BeatLock(None, detail="the broker is not Redis")
    client = None
    try:
        # Short timeouts: a page or a monitor must answer even when Redis does not.
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        holder = client.get(BEAT_LOCK_KEY)
    except Exception as exc:  # any failure to ask is an honest "unknown", never an error page
        logger.warning("Could not read the beat lock from Redis: %s", exc)
        return BeatLock(None, detail=f"Redis did not answer ({type(exc).__name__})")
    finally:
        if client is not None:
            client.close()
    if holder is None:
        return BeatLock(False)
    return BeatLock(True, holder=holder.decode(errors="replace"))


@dataclass(frozen=True)
class Health:
    now: dt.datetime
    last_sweep: SweepRun | None
    pending: int  # waiting to be sent, including those waiting to retry
    held_for_digest: int  # notifications a person chose to have in the next daily digest
    retrying: int  # pending after at least one temporary failure
    failed: int
    dead: int
    oldest_pending_at: dt.datetime | None
    beat: BeatLock

    @property
    def sweep_age(self) -> dt.timedelta | None:
        return None if self.last_sweep is None else self.now - self.last_sweep.finished_at

    @property
    def oldest_pending_age(self) -> dt.timedelta | None:
        return None if self.oldest_pending_at is None else self.now - self.oldest_pending_at

    def problems(self, *, max_sweep_age: dt.timedelta, max_failed: int = 0, max_dead: int = 0) -> list[str]:
        """What an external monitor should be told about, each in words naming its threshold."""
        found = []
        if self.last_sweep is None:
            found.append("no review sweep has ever completed")
        elif self.sweep_age > max_sweep_age:
            found.append(
                f"the last review sweep completed {describe_age(self.sweep_age)} ago "
                f"(more than {describe_age(max_sweep_age)})"
            )
        if self.failed > max_failed:
            found.append(f"{self.failed} reminder(s) failed (more than {max_failed})")
        if self.dead > max_dead:
            found.append(f"{self.dead} reminder(s) dead (more than {max_dead})")
        return found

    def lines(self, *, show_holder: bool = False) -> list[tuple[str, str]]:
        """(label, value) rows, the same for the page and the command."""
        if self.last_sweep is None:
            sweep = "never"
        else:
            sweep = (
                f"{timezone.localtime(self.last_sweep.finished_at):%d %B %Y %H:%M} "
                f"({describe_age(self.sweep_age)} ago{', caught up by the delivery tick' if self.last_sweep.caught_up else ''})"
            )
        beat = self.beat.label
        if self.beat.held and show_holder:
            beat += f" by {self.beat.holder}"
        elif self.beat.held is None and self.beat.detail:
            beat += f": {self.beat.detail}"
        oldest = "none pending" if self.oldest_pending_age is None else describe_age(self.oldest_pending_age)
        return [
            ("Last review sweep", sweep),
            ("Pending", str(self.pending)),
            ("Retrying (pending after a temporary failure)", str(self.retrying)),
            ("Held for the next daily digest", str(self.held_for_digest)),
            ("Failed", str(self.failed)),
            ("Dead", str(self.dead)),
            ("Oldest pending reminder", oldest),
            ("Beat lock", beat),
        ]


def reminder_health(rows: QuerySet[Reminder], *, now: dt.datetime | None = None, check_beat: bool = True) -> Health:
    """The figures for ``rows`` (already confined to what the caller may see)."""
    now = now or timezone.now()
    pending = Q(state=State.PENDING)
    figures = rows.order_by().aggregate(
        pending=Count("pk", filter=pending),
        retrying=Count("pk", filter=pending & Q(attempts__gt=0)),
        held=Count("pk", filter=Q(state=State.HELD)),
        failed=Count("pk", filter=Q(state=State.FAILED)),
        dead=Count("pk", filter=Q(state=State.DEAD)),
        oldest=Min("created_at", filter=pending),
    )
    return Health(
        now=now,
        last_sweep=schedule.last_sweep(),
        pending=figures["pending"],
        retrying=figures["retrying"],
        held_for_digest=figures["held"],
        failed=figures["failed"],
        dead=figures["dead"],
        oldest_pending_at=figures["oldest"],
        beat=beat_lock() if check_beat else BeatLock(None, detail="not checked"),
    )


def sweep_is_stale(now: dt.datetime | None = None, older_than: dt.timedelta = DASHBOARD_SWEEP_AGE) -> bool:
    """No sweep yet, or the last one finished more than ``older_than`` ago (the dashboard's warning)."""
    last = schedule.last_sweep()
    return last is None or (now or timezone.now()) - last.finished_at > older_than


def describe_age(age: dt.timedelta) -> str:
    minutes = max(0, int(age.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days {hours % 24} h"
