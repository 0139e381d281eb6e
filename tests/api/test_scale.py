"""The API's recommendation list pages by cursor: the last page costs what the first costs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import FindingFactory
from tracker.models import Recommendation

pytestmark = pytest.mark.django_db


def _add(org, count: int) -> None:
    inspection = FindingFactory(inspection__organisation=org).inspection
    findings = [FindingFactory(inspection=inspection, reference=f"R{n}") for n in range(count)]
    Recommendation.objects.bulk_create(
        Recommendation(
            finding=f, organisation=org, title=f.title, review_interval_days=28, next_review_due="2030-01-01"
        )
        for f in findings
    )


@pytest.mark.parametrize("ordering", ["next_review_due", "-title", "target_date"])
def test_every_page_costs_the_same_queries_and_none_counts_or_skips_rows(org, lead_api, ordering):
    _add(org, 95)
    url, params, pages = "/api/recommendations/", {"page_size": 10, "ordering": ordering}, []
    while url:
        with CaptureQueriesContext(connection) as captured:
            body = lead_api.get(url, params).json()
        pages.append([q["sql"] for q in captured.captured_queries])
        url, params = body["next"], None

    assert len(pages) == 10
    assert {len(sql) for sql in pages} == {len(pages[0])}
    for sql in pages:
        # No OFFSET and no count of the list (QuerySet.count's "__count"); per-row facts count evidence.
        assert not any(" OFFSET " in q or '"__count"' in q for q in sql), sql
