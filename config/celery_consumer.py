"""The worker's consumer, with Celery 5.6's handling of a lost broker connection.

Celery 5.7.0 regressed: when Redis goes away while a task is running (a restart, a failover), the
consumer collects the broken connection and then closes it. ``collect()`` has already detached kombu's
transport from its connection, so ``close()`` reaches the Redis transport's ``restore_unacked()``, which
rebuilds a connection pool from ``transport.client.hostname`` and raises ``AttributeError: 'NoneType'
object has no attribute 'hostname'``. That is not a connection error, so Celery calls it unrecoverable
and the worker exits. Celery 5.6 only collected. This does that, then lets Celery's own handler carry on
(warn, cancel or keep running tasks, reduce the prefetch count) with no connection left to close.

Delete this module and ``worker_consumer`` in ``config/celery.py`` once a Celery release fixes it;
``tests/reminders/test_redis_restarts.py`` restarts Redis under a running task and says whether it has.
"""

from __future__ import annotations

from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            # Bound reads on sockets already open: a peer that vanished without a reset never answers.
            bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
            try:
                connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
            except Exception:  # noqa: S110 (tearing down a broken connection, as Celery does)
                pass
        super().on_connection_error_after_connected(exc)
