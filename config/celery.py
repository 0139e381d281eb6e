"""The Celery app: JSON only, tasks take ids, acknowledged late, requeued if their worker dies.

Settings come from Django's (CELERY_*). The timing must nest, and workers and beat refuse to start
otherwise: task time limit < reminder lease < broker visibility timeout. A task is killed before its
lease can run out under it, so no live worker loses rows it is sending; and a task redelivered after
its worker died arrives only once the lease has run out, so its rows can be claimed again.

Exactly one beat may run: beat takes a lock in Redis before its first tick (waiting for Redis if it
is down) and keeps it fresh, through Redis restarts too; a second beat, on this machine or another,
finds the lock held and exits.
"""

import atexit
import logging
import os
import socket
import threading
import time
import uuid

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery 5.7.0 loses a worker when Redis restarts under a running task: see config/celery_consumer.py.
app.conf.worker_consumer = "config.celery_consumer:Consumer"
app.autodiscover_tasks()


def timing_problems() -> list[str]:
    """Why the configured timing would allow a double send or a lost reminder, if it would."""
    from django.conf import settings

    limit = app.conf.task_time_limit
    soft = app.conf.task_soft_time_limit
    lease = settings.REMINDER_LEASE_SECONDS
    visibility = (app.conf.broker_transport_options or {}).get("visibility_timeout")
    problems = []
    if not limit:
        problems.append("CELERY_TASK_TIME_LIMIT must be set.")
    elif not limit < lease:
        problems.append(f"CELERY_TASK_TIME_LIMIT ({limit}s) must be less than REMINDER_LEASE_SECONDS ({lease}s).")
    if soft and limit and not soft < limit:
        problems.append(f"CELERY_TASK_SOFT_TIME_LIMIT ({soft}s) must be less than CELERY_TASK_TIME_LIMIT ({limit}s).")
    if visibility is None or not lease < visibility:
        problems.append(
            f"REMINDER_LEASE_SECONDS ({lease}s) must be less than the broker's visibility_timeout ({visibility}s)."
        )
    export = settings.EXPORT_TASK_TIME_LIMIT
    if visibility is not None and not export < visibility:
        problems.append(
            f"EXPORT_TASK_TIME_LIMIT ({export}s) must be less than the broker's visibility_timeout ({visibility}s)."
        )
    if not (app.conf.task_acks_late and app.conf.task_reject_on_worker_lost):
        problems.append("Tasks must be acknowledged late and rejected (requeued) when their worker is lost.")
    if app.conf.task_serializer != "json" or set(app.conf.accept_content) != {"json"}:
        problems.append("Tasks must be serialised as JSON only.")
    return problems


@worker_init.connect
@beat_init.connect
def _refuse_unsafe_timing(**kwargs) -> None:
    problems = timing_problems()
    if problems:
        # SystemExit, because Celery logs and carries on after an ordinary exception in a signal handler.
        raise SystemExit("Refusing to start, unsafe Celery timing: " + " ".join(problems))


@worker_init.connect
def _refuse_pools_without_time_limits(sender, **kwargs) -> None:
    # Only prefork enforces CELERY_TASK_TIME_LIMIT (solo and threads ignore it), and the timing above
    # relies on it; a digest's send must also fit inside the lease renewed before it.
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool

    from tracker.reminders import timing_problems as sending_problems

    try:
        pool = get_implementation(sender.pool_cls)  # a class from --pool, or a name from worker_pool
    except ImportError:
        pool = None
    if not (isinstance(pool, type) and issubclass(pool, PreforkPool)):
        raise SystemExit(
            f"Refusing to start: the {sender.pool_cls!r} pool does not enforce CELERY_TASK_TIME_LIMIT, so a hung "
            "task could outlive its reminder lease. Use the prefork pool (--pool=prefork)."
        )
    problems = sending_problems()
    if problems:
        raise SystemExit("Refusing to start, unsafe reminder timing: " + " ".join(problems))


BEAT_LOCK_KEY = "tracker:beat-lock"

# One atomic step to take or keep the lock. 1: it is ours, extended. 2: it was gone (expired, or Redis
# restarted empty) and is ours again. 0: another beat's token is there.
_CLAIM_BEAT_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RELEASE_BEAT_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def beat_lock_timing() -> tuple[int, int]:
    """(expiry, refresh interval) of the beat lock, in seconds.

    BEAT_LOCK_SECONDS (60) is how long a beat that died without letting go blocks its successor;
    BEAT_LOCK_REFRESH_SECONDS (10) is short enough that a few refreshes can fail (Redis restarting)
    before the lock could expire. Tests shorten both.
    """
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import env_int

    seconds = env_int("BEAT_LOCK_SECONDS", 60, minimum=3)
    refresh = env_int("BEAT_LOCK_REFRESH_SECONDS", 10, minimum=1)
    if refresh * 3 > seconds:
        raise ImproperlyConfigured(
            f"BEAT_LOCK_REFRESH_SECONDS ({refresh}s) must be at most a third of BEAT_LOCK_SECONDS ({seconds}s)."
        )
    return seconds, refresh


class BeatLock:
    """This beat's hold on BEAT_LOCK_KEY: taken before the first tick, kept fresh, let go on a clean stop.

    Redis errors are retried, never taken for an answer: a key that has vanished (Redis restarted
    without persistence) is taken again with the same token, and only another beat's token means
    another beat runs. A beat that cannot reach Redis cannot send tasks either (the broker is the
    same Redis), and learns whether it still holds the lock when Redis answers again.
    """

    def __init__(self, url: str, seconds: int, refresh: int) -> None:
        import redis

        self.errors = redis.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._claim = self.client.register_script(_CLAIM_BEAT_LOCK)
        self._release = self.client.register_script(_RELEASE_BEAT_LOCK)
        # The random part tells apart two beats that happen to have the same pid on one host.
        self.token = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}:{os.getpid()}"
        self.seconds, self.refresh = seconds, refresh
        self.stopped = threading.Event()
        self.log = logging.getLogger(__name__)

    def claim(self) -> int | None:
        """1: held and extended; 2: it had gone and is ours again; 0: another beat's; None: no answer."""
        try:
            return int(self._claim(keys=[BEAT_LOCK_KEY], args=[self.token, self.seconds * 1000]))
        except self.errors as exc:
            self.log.warning("Beat lock: Redis did not answer (%s); trying again.", exc)
            return None

    def holder(self) -> str:
        try:
            return (self.client.get(BEAT_LOCK_KEY) or b"?").decode(errors="replace")
        except self.errors:
            return "?"

    def take(self) -> None:
        """Wait for Redis as long as it takes (beat never runs unlocked), then hold or exit."""
        delay = 1
        while (result := self.claim()) is None:
            time.sleep(delay)
            delay = min(delay * 2, self.refresh)
        if result == 0:
            raise SystemExit(f"Refusing to start: another beat ({self.holder()}) is running, and exactly one may run.")
        threading.Thread(target=self._keep_fresh, name="beat-lock", daemon=True).start()
        atexit.register(self.release)

    def _keep_fresh(self) -> None:
        try:
            while not self.stopped.wait(self.refresh):
                result = self.claim()  # None: no answer this time; the next round tries again
                if result == 2:
                    self.log.warning("Beat lock: the lock had gone (Redis restarted empty?); taken again.")
                elif result == 0:
                    self.log.critical(
                        "Another beat (%s) holds the beat lock; stopping so only one runs.", self.holder()
                    )
                    os._exit(1)
        except BaseException:
            # A refresh thread that died quietly would leave beat running unlocked.
            self.log.critical("Beat lock: the refresh failed; stopping rather than run unlocked.", exc_info=True)
            os._exit(1)

    def release(self) -> None:
        self.stopped.set()
        try:
            self._release(keys=[BEAT_LOCK_KEY], args=[self.token])  # only if it is still ours
        except self.errors:
            pass  # it expires by itself


@beat_init.connect
def _one_beat_only(**kwargs) -> None:
    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return
    try:
        lock = BeatLock(url, *beat_lock_timing())
    except Exception as exc:
        # SystemExit, because Celery logs and carries on after an ordinary exception: beat would run unlocked.
        raise SystemExit(f"Refusing to start: cannot set up the beat lock ({exc}).") from exc
    lock.take()
