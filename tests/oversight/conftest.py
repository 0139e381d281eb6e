"""Oversight fixtures: the personas' organisation is the seeded Cleveland Police, with its 2017, 2018 and
2025 inspections, so dashboards, board packs and exports run on the real findings."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from tests.web.conftest import browser_type_launch_args  # noqa: F401 (fixture reused)
from tracker.models import Inspection, Organisation
from tracker.seeding import seed

# A Wednesday, so that "this week" and the weeks before it are easy to reason about.
TODAY = dt.date(2026, 3, 18)


@pytest.fixture
def frozen():
    with time_machine.travel(dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC), tick=False):
        yield TODAY


@pytest.fixture
def org(db):
    """Overrides tests/conftest.py's org: the personas belong to the seeded Cleveland Police."""
    seed()
    return Organisation.objects.get(slug="cleveland-police")


@pytest.fixture
def cleveland(org) -> Inspection:
    return Inspection.objects.get(slug="cleveland-police-2025-ncpi")


@pytest.fixture
def worker():
    """Export jobs run in this process as soon as the request's transaction commits: no real worker."""
    from config.celery import app

    before = {key: app.conf.get(key) for key in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(before)


def fetch(client, url: str, params=None):
    """Ask for a file made by the worker: run the queued job (on commit, as in production), follow the
    redirect to its status page, and download the file when it is ready. Needs the ``worker`` fixture."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.get(url, params)
    while response.status_code == 302:
        response = client.get(response["Location"])
    job = (response.context or {}).get("job")
    if job is not None and job.state == "ready":  # the status page: take its download link
        response = client.get(reverse("tracker:export-download", args=[job.pk]))
    return response


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content
