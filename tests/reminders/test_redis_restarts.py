"""Redis restarts under running processes, and processes that come back.

Production Redis runs without persistence, so a restart empties it: the queues, the unacknowledged
tasks and the beat lock are gone. Each test here starts its own ``redis-server`` (``restartable_redis``),
stops it and starts a new one on the same port while real Celery processes use it. Beat's lock is
made short (``BEAT_LOCK_SECONDS``, ``BEAT_LOCK_REFRESH_SECONDS``) so the tests need not wait a minute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from config.celery import app as celery_app
from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import ROOT, wait_for
from tracker.permissions import Role

pytestmark = pytest.mark.integration

LOCK = "tracker:beat-lock"
SHORT_LOCK = {"BEAT_LOCK_SECONDS": "6", "BEAT_LOCK_REFRESH_SECONDS": "1"}


def _holder(redis_server) -> str | None:
    client = redis_server.client()
    try:
        value = client.get(LOCK)
    finally:
        client.close()
    return value.decode() if value is not None else None


def _held_by(redis_server, process: subprocess.Popen) -> bool:
    return (_holder(redis_server) or "").endswith(f":{process.pid}")


def _assert_a_second_beat_exits(services, redis_server, first: subprocess.Popen) -> None:
    second, second_log = services.beat()
    try:
        second.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("a second beat started beside the first")
    assert second.returncode != 0
    assert "another beat" in second_log.read_text()
    assert first.poll() is None
    assert _held_by(redis_server, first)


# --- beat ------------------------------------------------------------------------------------------


def test_beat_takes_its_lock_again_when_redis_restarts_empty_and_a_later_second_beat_exits(
    restartable_services, restartable_redis
):
    call_command("setup_schedule")
    restartable_services.extra_env.update(SHORT_LOCK)
    first, log = restartable_services.beat()
    wait_for(lambda: _held_by(restartable_redis, first), 30, "the first beat to take the lock")

    restartable_redis.stop()
    restartable_redis.start()
    assert _holder(restartable_redis) is None  # the restart emptied Redis

    wait_for(lambda: _held_by(restartable_redis, first) or first.poll() is not None, 20, "the lock to be retaken")
    assert first.poll() is None, log.read_text()  # the vanished key is not another beat's
    assert _held_by(restartable_redis, first)
    _assert_a_second_beat_exits(restartable_services, restartable_redis, first)


def test_beat_rides_out_redis_being_down_at_a_refresh_and_takes_its_lock_again(restartable_services, restartable_redis):
    call_command("setup_schedule")
    restartable_services.extra_env.update(SHORT_LOCK)
    first, log = restartable_services.beat()
    wait_for(lambda: _held_by(restartable_redis, first), 30, "the first beat to take the lock")

    restartable_redis.stop()
    wait_for(lambda: "Beat lock: Redis did not answer" in log.read_text(), 20, "a failed refresh")
    assert first.poll() is None, log.read_text()
    restartable_redis.start()

    wait_for(lambda: _held_by(restartable_redis, first) or first.poll() is not None, 20, "the lock to be retaken")
    assert first.poll() is None, log.read_text()
    _assert_a_second_beat_exits(restartable_services, restartable_redis, first)


def test_beat_started_while_redis_is_down_waits_for_the_lock_before_it_runs(restartable_services, restartable_redis):
    call_command("setup_schedule")
    restartable_services.extra_env.update(SHORT_LOCK)
    restartable_redis.stop()
    first, log = restartable_services.beat()
    wait_for(lambda: "Beat lock: Redis did not answer" in log.read_text() or first.poll() is not None, 30, "a try")
    assert first.poll() is None, log.read_text()  # waiting, not gone
    assert "Scheduler: Sending due task" not in log.read_text()

    restartable_redis.start()

    wait_for(lambda: _held_by(restartable_redis, first) or first.poll() is not None, 30, "the lock to be taken")
    assert first.poll() is None, log.read_text()
    _assert_a_second_beat_exits(restartable_services, restartable_redis, first)


def test_a_stopping_beat_never_removes_a_lock_another_beat_holds(restartable_services, restartable_redis):
    call_command("setup_schedule")
    first, log = restartable_services.beat()  # production timing: the first refresh is 10 s away
    wait_for(lambda: _held_by(restartable_redis, first), 30, "the beat to take the lock")
    client = restartable_redis.client()
    client.set(LOCK, "elsewhere:0badf00d:1")  # as if this beat had stalled past expiry and another took over

    first.send_signal(signal.SIGTERM)
    first.wait(10)

    assert client.get(LOCK) == b"elsewhere:0badf00d:1", log.read_text()
    client.close()


def test_a_beat_with_unsafe_lock_timing_refuses_to_start(restartable_services):
    restartable_services.extra_env.update(BEAT_LOCK_SECONDS="60", BEAT_LOCK_REFRESH_SECONDS="30")
    beat, log = restartable_services.beat()
    try:
        beat.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail("beat started, and would have run without its lock")
    assert beat.returncode != 0
    assert "BEAT_LOCK_REFRESH_SECONDS (30s) must be at most a third" in log.read_text()


# --- worker ----------------------------------------------------------------------------------------


def test_a_worker_survives_redis_restarting_under_a_running_task_and_takes_the_next_task(
    restartable_services, restartable_redis, smtp
):
    org = OrganisationFactory(slug="cleveland", name="Cleveland Police")
    for n in range(2):
        owner = UserFactory(username=f"owner{n}", organisation=org, roles=[Role.OWNER])
        RecommendationFactory(
            finding__inspection__organisation=org, owner=owner, next_review_due=timezone.localdate() + dt.timedelta(1)
        )
    smtp.handler.stall_after = 0  # the sweep's first digest hangs until the test lets it go
    worker, log = restartable_services.worker("--pool=prefork", "--concurrency=2")

    with celery_app.connection_for_write(restartable_redis.url) as connection:
        celery_app.send_task("tracker.tasks.run_review_sweep", connection=connection)
    assert smtp.handler.stalled.wait(30), log.read_text()

    restartable_redis.stop()  # with the sweep mid-task
    restartable_redis.start()
    wait_for(lambda: "Connection to broker lost" in log.read_text() or worker.poll() is not None, 20, "the loss")
    smtp.handler.stall_after = None
    smtp.handler.release.set()

    # Sent once the worker has connected again (the restart emptied the queues).
    deadline = time.monotonic() + 60
    wait_for(lambda: log.read_text().count("Connected to redis://") >= 2 or worker.poll() is not None, 60, "reconnect")
    assert worker.poll() is None, log.read_text()
    with celery_app.connection_for_write(restartable_redis.url) as connection:
        after = celery_app.send_task("tracker.tasks.deliver_due_reminders", connection=connection)
    wait_for(
        lambda: f"deliver_due_reminders[{after.id}] succeeded" in log.read_text() or worker.poll() is not None,
        max(deadline - time.monotonic(), 1),
        "the task sent after Redis returned",
    )
    assert worker.poll() is None, log.read_text()
    assert f"deliver_due_reminders[{after.id}] succeeded" in log.read_text()


# --- processes that come back ----------------------------------------------------------------------

RESPAWN = ROOT / "bin" / "respawn"

# A child that notes each start, then exits at once (status 3), or on TERM notes that and exits 0.
CHILD = """
import os, signal, sys, time
from pathlib import Path
notes = Path(sys.argv[1])
def stop(signum, frame):
    with notes.open("a") as f: f.write(f"term {os.getpid()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with notes.open("a") as f: f.write(f"start {os.getpid()}\\n")
starts = notes.read_text().count("start")
if starts < 3:
    sys.exit(3)
while True:
    time.sleep(0.1)
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_respawn_starts_a_child_again_when_it_exits_and_term_stops_both_cleanly(tmp_path):
    notes = tmp_path / "notes"
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    process = subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
        [str(RESPAWN), sys.executable, str(child), str(notes)], stderr=subprocess.PIPE, text=True
    )
    try:
        # Two quick exits: started again after 1 s, then after 2 s; the third stays up.
        wait_for(lambda: _lines(notes).count("start") == 3, 20, "the child to be started three times")
        time.sleep(0.3)
        assert process.poll() is None

        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:  # respawn misbehaved: leave no child behind (it has a process group of its own)
            process.kill()
            process.wait()
            words = _lines(notes)
            for pid in {int(words[n + 1]) for n, word in enumerate(words) if word == "start"}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    words = _lines(notes)
    last = words[-3]  # the pid of the third start
    assert words[-4:] == ["start", last, "term", last]  # the running child got TERM and finished its shutdown
    with pytest.raises(ProcessLookupError):
        os.kill(int(last), 0)
    assert process.stderr.read().count("starting it again") == 2


def test_the_procfile_runs_worker_and_beat_under_respawn():
    entries = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ": " in line)
    for name in ("worker", "beat"):
        assert entries[name].startswith("exec bin/respawn .venv/bin/celery -A config " + name), entries[name]
    assert os.access(RESPAWN, os.X_OK)
