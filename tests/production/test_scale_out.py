"""Several workers, one database: every reminder is claimed once, and every recipient's reminders whole.

These share a real database with other processes (``worker_db``): a file SQLite database under
``make test``, a PostgreSQL database under ``make test-postgres``, where the claim uses
``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import ast
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tests.reminders.conftest import BUSY_DIGESTS, BUSY_REMINDERS, busy_organisation, database_url, wait_for
from tracker import reminders, tasks
from tracker.models import Reminder
from tracker.permissions import Role

ROOT = Path(__file__).resolve().parents[2]
State = Reminder.State

# Holds row locks in its own transaction, as another worker in the middle of its claim would.
LOCKER = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    conn.execute("SELECT id FROM tracker_reminder WHERE id = ANY(%s) FOR UPDATE", [[int(i) for i in sys.argv[2:]]])
    print("locked", flush=True)
    sys.stdin.readline()
    conn.rollback()
"""

# Claims batches until nothing is left, "sending" each for a moment, and prints what it claimed.
CLAIMER = """
import json, sys, time
import django
django.setup()
from tracker import reminders
sys.stdin.readline()  # start together
while True:
    _, rows = reminders.claim(2)
    if not rows:
        break
    print(json.dumps([[row.pk, row.recipient_id] for row in rows]), flush=True)
    time.sleep(0.05)
"""


def pending_reminders(owners: int, per_owner: int) -> dict[int, set[int]]:
    """Pending ledger rows, ``per_owner`` for each owner: {recipient id: {reminder ids}}."""
    org = OrganisationFactory(slug="cleveland", name="Cleveland Police")
    due = timezone.localdate()
    rows: dict[int, set[int]] = collections.defaultdict(set)
    for n in range(owners):
        owner = UserFactory(username=f"owner{n}", organisation=org, roles=[Role.OWNER])
        for _ in range(per_owner):
            rec = RecommendationFactory(finding__inspection__organisation=org, owner=owner, next_review_due=due)
            reminder = Reminder.objects.create(
                recommendation=rec, recipient=owner, stage=Reminder.Stage.DUE_SOON, review_due=due
            )
            rows[owner.pk].add(reminder.pk)
    return rows


@pytest.fixture
def locker(worker_db):
    """Lock some reminder rows from another process; released when the test ends (or by calling release)."""
    started: list[subprocess.Popen] = []

    def lock(ids) -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
            [sys.executable, "-c", LOCKER, database_url(worker_db), *map(str, ids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield lock
    for process in started:
        if process.poll() is None:
            process.communicate("\n", timeout=10)


def release(process: subprocess.Popen) -> None:
    process.communicate("\n", timeout=10)


@pytest.fixture
def on_postgres(worker_db):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; `make test-postgres` runs this")
    with connection.cursor() as cursor:
        # Were the claim to wait for the other worker's locks, it would fail here instead of hanging.
        cursor.execute("SET lock_timeout = '3s'")


def test_a_claim_passes_over_rows_another_worker_is_claiming_instead_of_waiting(on_postgres, locker):
    rows = pending_reminders(owners=2, per_owner=2)
    first, second = rows
    held = locker(rows[first])

    started = time.monotonic()
    _, claimed = reminders.claim(10)

    assert time.monotonic() - started < 2
    assert {row.pk for row in claimed} == rows[second]
    assert set(Reminder.objects.filter(pk__in=rows[first]).values_list("state", flat=True)) == {State.PENDING}
    release(held)
    _, claimed = reminders.claim(10)
    assert {row.pk for row in claimed} == rows[first]


def test_a_recipient_partly_locked_by_another_worker_is_left_whole_to_it(on_postgres, locker):
    rows = pending_reminders(owners=2, per_owner=3)
    first, second = rows
    one_of_them = sorted(rows[first])[:1]
    locker(one_of_them)

    _, claimed = reminders.claim(10)

    # Taking the other two would split the first owner's digest in two.
    assert {row.pk for row in claimed} == rows[second]
    assert set(Reminder.objects.filter(pk__in=rows[first]).values_list("state", flat=True)) == {State.PENDING}


def test_when_every_first_choice_is_busy_the_claim_takes_the_next_recipients(on_postgres, locker):
    rows = pending_reminders(owners=6, per_owner=1)
    # The recipients a claim of two looks at first (the same query, the same plan) ...
    first_choices = set(Reminder.objects.order_by().values_list("recipient_id", flat=True).distinct()[:2])
    locker([pk for recipient in first_choices for pk in rows[recipient]])  # ... are being claimed elsewhere

    _, claimed = reminders.claim(2)

    taken = {row.recipient_id for row in claimed}
    assert taken and not taken & first_choices


def test_two_processes_claiming_at_once_take_every_row_once_and_each_recipient_whole(worker_db):
    rows = pending_reminders(owners=20, per_owner=3)
    env = {"DATABASE_URL": database_url(worker_db), "DJANGO_SETTINGS_MODULE": "config.settings"}
    claimers = [
        subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
            [sys.executable, "-c", CLAIMER],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for claimer in claimers:
        claimer.stdin.write("go\n")
        claimer.stdin.flush()
    outputs = [claimer.communicate(timeout=60) for claimer in claimers]

    assert [claimer.returncode for claimer in claimers] == [0, 0], [err for _, err in outputs]
    batches = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    assert all(batches), "both processes should have claimed something"
    claimed = [pk for process in batches for batch in process for pk, _ in batch]
    assert sorted(claimed) == sorted(pk for ids in rows.values() for pk in ids)  # all of them, each once
    for batch in (batch for process in batches for batch in process):
        for recipient in {recipient for _, recipient in batch}:
            assert {pk for pk, r in batch if r == recipient} == rows[recipient]  # whole: one digest each


@pytest.mark.integration
def test_two_worker_processes_sharing_one_database_send_every_reminder_once(services, smtp, broker):
    assert services.env()["DATABASE_URL"].split(":")[0] == (
        "postgres" if connection.vendor == "postgresql" else "sqlite"
    )
    busy_organisation()
    services.extra_env["REMINDER_BATCH_RECIPIENTS"] = "2"  # many small batches, so the two really interleave
    _, first_log = services.worker("--pool=prefork", "--concurrency=1", "--hostname=one@%h")
    _, second_log = services.worker("--pool=prefork", "--concurrency=1", "--hostname=two@%h")

    tasks.run_review_sweep.delay()
    tasks.run_review_sweep.delay()
    logs = (first_log, second_log)
    wait_for(lambda: sum(log.read_text().count("succeeded in") for log in logs) == 2, 60, "both sweeps to finish")

    assert [log.read_text().count("succeeded in") for log in logs] == [1, 1]  # one sweep on each machine
    items = smtp.handler.items()
    duplicates = [item for item, count in collections.Counter(items).items() if count > 1]
    assert duplicates == []
    assert len(set(items)) == BUSY_REMINDERS  # per owner: due soon, overdue, overdue, escalation; 3 unowned
    assert set(Reminder.objects.values_list("state", flat=True)) == {State.SENT}
    results = [
        ast.literal_eval(found)
        for log in logs
        for found in re.findall(r"succeeded in [\d.]+s: (\{.*\})", log.read_text())
    ]
    assert sum(result["digests_sent"] for result in results) == BUSY_DIGESTS  # 12 owners and the lead, once each
    assert collections.Counter(received.rcpt_tos[0] for received in smtp.handler.received).most_common(1)[0][1] == 1
