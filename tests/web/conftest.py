"""Fixtures for the staff pages: a recommendation in each interesting state, and Chromium for browser tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from tests.browser import ARTIFACTS, AXE_SCRIPT, LAUNCH_ARGS  # noqa: F401 (re-exported)
from tests.factories import FindingFactory, InspectionFactory, RecommendationFactory

# A tiny but real PDF: filetype recognises it by content.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    return LAUNCH_ARGS


@pytest.fixture
def inspection(org):
    return InspectionFactory(organisation=org, title="National child protection inspection of Cleveland Police")


@pytest.fixture
def overdue_rec(inspection, olly):
    """Olly's recommendation whose review is two weeks overdue."""
    return RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="CC1", title="Respond to missing children"),
        owner=olly,
        next_review_due=timezone.localdate() - dt.timedelta(days=14),
    )


@pytest.fixture
def later_rec(inspection, olly):
    """Olly's recommendation reviewed recently: due in a month."""
    return RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="AFI2", title="Improve supervision records"),
        owner=olly,
        next_review_due=timezone.localdate() + dt.timedelta(days=30),
    )


@pytest.fixture
def soon_rec(inspection, olly):
    return RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="AFI1", title="Share information with partners"),
        owner=olly,
        next_review_due=timezone.localdate() + dt.timedelta(days=3),
    )


@pytest.fixture
def pdf_file(tmp_path) -> Path:
    path = tmp_path / "audit-of-response-times.pdf"
    path.write_bytes(PDF_BYTES)
    return path
