"""The Celery app: JSON only, tasks take ids, acknowledged late, requeued if their worker dies.

Settings come from Django's (CELERY_*). The timing must nest, and workers and beat refuse to start
otherwise: task time limit < reminder lease < broker visibility timeout. A task is killed before its
lease can run out under it, so no live worker loses rows it is sending; and a task redelivered after
its worker died arrives only once the lease has run out, so its rows can be claimed again.

Exactly one beat may run: beat takes a lock in Redis when it starts and keeps it fresh; a second
beat, on this machine or another, finds the lock held and exits.
"""

import atexit
import logging
import os
import socket
import threading

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
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


BEAT_LOCK_KEY = "tracker:beat-lock"
BEAT_LOCK_SECONDS = 60  # a beat that dies without letting go blocks a successor for at most this long


@beat_init.connect
def _one_beat_only(**kwargs) -> None:
    import redis

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return
    client = redis.Redis.from_url(url)
    me = f"{socket.gethostname()}:{os.getpid()}"
    if not client.set(BEAT_LOCK_KEY, me, nx=True, ex=BEAT_LOCK_SECONDS):
        holder = (client.get(BEAT_LOCK_KEY) or b"?").decode()
        raise SystemExit(f"Refusing to start: another beat ({holder}) is running, and exactly one may run.")

    def keep_fresh() -> None:
        while True:
            threading.Event().wait(BEAT_LOCK_SECONDS / 3)
            if (client.get(BEAT_LOCK_KEY) or b"").decode() != me:
                logging.getLogger(__name__).critical("Lost the beat lock to another beat; stopping so only one runs.")
                os._exit(1)
            client.expire(BEAT_LOCK_KEY, BEAT_LOCK_SECONDS)

    def release() -> None:
        if (client.get(BEAT_LOCK_KEY) or b"").decode() == me:
            client.delete(BEAT_LOCK_KEY)

    threading.Thread(target=keep_fresh, name="beat-lock", daemon=True).start()
    atexit.register(release)
