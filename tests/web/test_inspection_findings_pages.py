"""The inspection page does not grow with the report: each kind of finding shows its count and first few,
and its own pages reach every one of them exactly once, a page at a time."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import FindingFactory, InspectionFactory, RecommendationFactory
from tracker import views
from tracker.models import Finding

pytestmark = pytest.mark.django_db

Kind = Finding.Kind


def _add(inspection, kind: str, start: int, count: int, *, with_recommendation: bool = True) -> None:
    for i in range(start, start + count):
        finding = FindingFactory(inspection=inspection, kind=kind, reference=f"{kind[:2].upper()}{i:04d}")
        if with_recommendation:
            RecommendationFactory(finding=finding)


def _get(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def _references(html: str) -> list[str]:
    return re.findall(r"<strong>([A-Z]{2}\d{4})</strong>", html)


def test_queries_and_size_are_the_same_at_a_few_and_many_findings(client, org, rita):
    inspection = InspectionFactory(organisation=org)
    client.force_login(rita)
    for kind in (Kind.CAUSE_OF_CONCERN, Kind.CONCERN, Kind.STRENGTH):
        _add(inspection, kind, 0, views.FINDINGS_SHOWN + 1, with_recommendation=kind != Kind.STRENGTH)
    few_queries, few = _get(client, inspection.get_absolute_url())
    _add(inspection, Kind.CONCERN, 100, 80)
    _add(inspection, Kind.STRENGTH, 100, 30, with_recommendation=False)
    many_queries, many = _get(client, inspection.get_absolute_url())
    assert few_queries == many_queries
    assert abs(len(many) - len(few)) <= 0.02 * len(few), (len(few), len(many))
    assert "Concern or observation (101)" in many and "Strengths to sustain (51)" in many
    assert "Cause of concern (21)" in many
    assert len(_references(many)) == 3 * views.FINDINGS_SHOWN


def test_each_kind_pages_through_every_finding_once_in_reference_order(client, org, rita):
    inspection = InspectionFactory(organisation=org)
    client.force_login(rita)
    _add(inspection, Kind.CONCERN, 0, 2 * views.FINDINGS_PAGE + 3)
    _add(inspection, Kind.STRENGTH, 0, 4, with_recommendation=False)
    html = client.get(inspection.get_absolute_url()).content.decode()
    assert f'href="?kind={Kind.CONCERN}"' in html  # more than shown: a link to them all
    assert f'href="?kind={Kind.STRENGTH}"' not in html  # all four shown already
    seen, url, pages = [], f"{inspection.get_absolute_url()}?kind={Kind.CONCERN}", 0
    while url:
        html = client.get(url).content.decode()
        pages += 1
        seen += _references(html)
        assert "Strengths to sustain" not in html
        found = re.search(r'href="(\?kind=[a-z_]+&amp;after=[A-Z0-9]+)"', html)
        url = inspection.get_absolute_url() + found.group(1).replace("&amp;", "&") if found else None
    expected = sorted(
        Finding.objects.filter(inspection=inspection, kind=Kind.CONCERN).values_list("reference", flat=True)
    )
    assert seen == expected and pages == 3


def test_an_unknown_kind_shows_the_whole_inspection(client, org, rita):
    inspection = InspectionFactory(organisation=org)
    client.force_login(rita)
    _add(inspection, Kind.CONCERN, 0, 3)
    html = client.get(f"{inspection.get_absolute_url()}?kind=nonsense&after=ZZ").content.decode()
    assert _references(html) == ["CO0000", "CO0001", "CO0002"]
