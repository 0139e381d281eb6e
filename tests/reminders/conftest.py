"""Fixtures for the reminder tests: frozen sweeps, a real SMTP server, a real Redis, real Celery.

The SMTP server is aiosmtpd on loopback; faults are injected by its handler (a refused recipient,
a stalled DATA) or by stopping it. Redis is Debian's redis-server on a free port in a temporary
directory. Worker and beat are real ``celery`` processes that share a file SQLite database with the
test: ``worker_db`` points Django's default connection at that file for the duration of a test. Under
``make test-postgres`` it is a fresh PostgreSQL database on the same server instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from config.celery import app as celery_app
from tracker import reminders

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
CELERY = ROOT / ".venv" / "bin" / "celery"


def london(year: int, month: int, day: int, hour: int = 7, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


# 12 owners, each with a review due soon, one just overdue and one badly overdue, and 3 unowned:
# 12 * 4 + 3 = 51 reminders in 13 digests (12 owners and the lead).
BUSY_REMINDERS, BUSY_DIGESTS = 12 * 4 + 3, 13


def busy_organisation():
    """The data the concurrency tests share; returns (organisation, lead, owners)."""
    from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
    from tracker.permissions import Role

    org = OrganisationFactory(slug="cleveland", name="Cleveland Police")
    lead = UserFactory(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD])
    owners = [UserFactory(username=f"owner{n}", organisation=org, roles=[Role.OWNER]) for n in range(12)]
    today = timezone.localdate()
    for owner in owners:
        for days in (2, -1, -20):
            RecommendationFactory(
                finding__inspection__organisation=org, owner=owner, next_review_due=today + dt.timedelta(days=days)
            )
    RecommendationFactory.create_batch(3, finding__inspection__organisation=org, owner=None)
    return org, lead, owners


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 20.0, message: str = "condition") -> None:
    """Poll a real process's observable state (integration tests only; unit tests freeze time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


# --- frozen sweeps -------------------------------------------------------------------------------


@pytest.fixture
def sweep_at(transactional_db):
    """Run the whole sweep (plan + deliver) at a given instant; return the emails it sent.

    On ``transactional_db``: delivery refuses to run inside a transaction, such as ``db``'s.
    """

    def run(when: dt.datetime) -> list:
        before = len(mail.outbox)
        with time_machine.travel(when, tick=False):
            reminders.run_sweep()
        return mail.outbox[before:]

    return run


# --- a real SMTP server --------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()

    def items(self) -> set[tuple[str, str, str]]:
        """(recipient, link, stage label) for each item listed in the digest."""
        text = self.text.replace("\r\n", "\n")
        found = re.findall(r"^  (.+); review due .+\n  (\S+)$", text, flags=re.M)
        return {(self.rcpt_tos[0], link, stage) for stage, link in found}


@dataclass
class SmtpHandler:
    """Records every accepted message; refuses chosen recipients; can stall chosen messages."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply, e.g. "550 ..."
    stall_after: int | None = None  # stall every message after this many have been accepted
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.stall_after is not None and len(self.received) > self.stall_after:
            # The message is in; the sender never hears so (the way a crash loses an acknowledgement).
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"

    def items(self) -> list[tuple[str, str, str]]:
        return [item for received in self.received for item in received.items()]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SmtpHandler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.handler.release.set()
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback, with Django's SMTP backend pointed at it."""
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


# --- a real Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def accepting() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    wait_for(accepting, 10, "redis-server to accept connections")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture
def redis(redis_url):
    import redis as redis_py

    client = redis_py.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def broker(redis_url, redis):
    """Point this process's Celery producer at the test Redis."""
    previous = celery_app.conf.broker_url

    def use(url: str) -> None:
        # Connection and producer pools are made on first use from broker_url; start them afresh.
        celery_app.conf.broker_url = url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    use(redis_url)
    yield redis
    use(previous)


# --- a file database shared with worker processes -----------------------------------------------


def _on_postgres() -> bool:
    return connections["default"].vendor == "postgresql"


def _postgres_admin(sql: str) -> None:
    """CREATE or DROP DATABASE, which cannot run inside a transaction or on the database itself."""
    with connections["default"]._nodb_cursor() as cursor:
        cursor.execute(sql)


def database_url(db: Path | str) -> str:
    """DATABASE_URL for worker processes: the SQLite file, or the PostgreSQL database of that name."""
    if isinstance(db, Path):
        return f"sqlite:///{db}"
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{db}").geturl()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory, django_db_blocker):
    if _on_postgres():
        name = f"tracker_worker_template_{os.getpid()}"
        with django_db_blocker.unblock():
            _postgres_admin(f'DROP DATABASE IF EXISTS "{name}"')
            _postgres_admin(f'CREATE DATABASE "{name}"')
            with _default_connection_on(name):
                call_command("migrate", verbosity=0)
        yield name
        with django_db_blocker.unblock():
            _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = tmp_path_factory.mktemp("template-db") / "tracker.sqlite3"
    with django_db_blocker.unblock(), _default_connection_on(path):
        call_command("migrate", verbosity=0)
    yield path


@contextlib.contextmanager
def _default_connection_on(path: Path | str):
    """Swap Django's default connection for one on a file, then put the original back."""
    original = connections["default"]
    replacement = original.__class__({**original.settings_dict, "NAME": str(path)}, alias="default")
    connections["default"] = replacement
    try:
        yield
    finally:
        replacement.close()
        connections["default"] = original


@pytest.fixture
def worker_db(migrated_template, tmp_path, django_db_blocker):
    """A fresh, migrated file database that this test and its worker processes both use."""
    if _on_postgres():
        name = f"tracker_worker_{uuid.uuid4().hex[:12]}"
        with django_db_blocker.unblock():
            _postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
            try:
                with _default_connection_on(name):
                    yield name
            finally:
                _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = tmp_path / "tracker.sqlite3"
    shutil.copy(migrated_template, path)
    with django_db_blocker.unblock(), _default_connection_on(path):
        yield path


@dataclass
class Services:
    """Real worker and beat processes sharing the test's database, Redis and SMTP server."""

    db_path: Path | str  # a SQLite file, or a PostgreSQL database name
    redis_url: str
    smtp_port: int
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(self.db_path),
            "REDIS_URL": self.redis_url,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp_port),
            "EMAIL_TIMEOUT": "5",
            "SITE_URL": django_settings.SITE_URL,
            "VAR_DIR": str(self.log_dir),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        return env

    def _start(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.log_dir / f"{name}-{len(self.processes)}.log"
        handle = log.open("w")
        process = subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
            [str(CELERY), "-A", "config", *args], cwd=ROOT, env=self.env(), stdout=handle, stderr=subprocess.STDOUT
        )
        self.processes.append((process, log))
        return process, log

    def worker(self, *args: str, ready: bool = True) -> tuple[subprocess.Popen, Path]:
        process, log = self._start(
            "worker",
            ["worker", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", *args],
        )
        if ready:
            wait_for(lambda: "ready." in log.read_text() or process.poll() is not None, 30, "the worker to start")
            assert process.poll() is None, log.read_text()
        return process, log

    def beat(self) -> tuple[subprocess.Popen, Path]:
        return self._start("beat", ["beat", "--loglevel=INFO", f"--schedule={self.log_dir / 'beat-schedule'}"])

    def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def services(worker_db, redis_url, redis, smtp, tmp_path):
    started = Services(db_path=worker_db, redis_url=redis_url, smtp_port=smtp.port, log_dir=tmp_path)
    yield started
    started.stop_all()


# --- a Redis of the test's own, which it may restart ----------------------------------------------


class RedisServer:
    """A redis-server on a fixed port that a test stops and starts again.

    Without persistence it comes back empty, as a production Redis run with ``--save ""`` does: the
    queues, the unacknowledged tasks and the beat lock are gone.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def accepting(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True
        return False

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
            [
                *(server, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.accepting, 10, "redis-server to accept connections")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
        wait_for(lambda: not self.accepting(), 10, "redis-server to stop")

    def client(self):
        import redis as redis_py

        return redis_py.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture
def restartable_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def restartable_services(worker_db, restartable_redis, smtp, tmp_path):
    """Worker and beat processes, as ``services``, on a Redis the test may restart."""
    started = Services(
        db_path=worker_db, redis_url=restartable_redis.url, smtp_port=smtp.port, log_dir=tmp_path / "logs"
    )
    started.log_dir.mkdir()
    yield started
    started.stop_all()


# --- killing a worker as a crash would ------------------------------------------------------------


def kill_worker_tree(process: subprocess.Popen) -> None:
    """SIGKILL a prefork worker and its pool processes, as a machine crash would (parent first, so it cannot react)."""

    def descendants(pid: int) -> list[int]:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        found = [int(child) for child in children.read_text().split()] if children.exists() else []
        return found + [grandchild for child in found for grandchild in descendants(child)]

    tree = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
