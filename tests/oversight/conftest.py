"""Oversight fixtures: the personas' organisation is the seeded Cleveland Police, with its 2017, 2018 and
2025 inspections, so dashboards, board packs and exports run on the real findings."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

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
