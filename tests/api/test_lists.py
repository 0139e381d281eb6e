"""Lists: the pages' filters, ordering, search and pagination, through the API."""

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import ModelSerializer

from tests.factories import EvidenceFactory, FindingFactory, RecommendationFactory, ThemeFactory
from tracker import permissions, policy
from tracker.api.serializers import RecommendationSerializer
from tracker.filters import RecommendationFilter
from tracker.models import Recommendation

TODAY = timezone.localdate()


@pytest.fixture
def plan(org, olly, otto):
    missing = ThemeFactory(slug="missing-children", name="Missing children")
    recs = {
        "overdue": RecommendationFactory(
            finding=FindingFactory(inspection__organisation=org, reference="CC1", title="Missing children"),
            owner=olly,
            rag="red",
            next_review_due=TODAY - dt.timedelta(days=3),
        ),
        "soon": RecommendationFactory(
            finding__inspection__organisation=org, owner=otto, rag="amber", next_review_due=TODAY + dt.timedelta(days=2)
        ),
        "later": RecommendationFactory(
            finding__inspection__organisation=org, owner=None, next_review_due=TODAY + dt.timedelta(days=40)
        ),
        "closed": RecommendationFactory(
            finding__inspection__organisation=org,
            owner=olly,
            status=Recommendation.Status.CLOSED,
            next_review_due=TODAY - dt.timedelta(days=30),
        ),
    }
    recs["overdue"].finding.themes.add(missing)
    return recs


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["closed", "overdue", "soon", "later"]),
        ({"overdue": "true"}, ["overdue"]),
        ({"status": ["not_started", "closed"]}, ["closed", "overdue", "soon", "later"]),
        ({"status": "closed"}, ["closed"]),
        ({"rag": "red"}, ["overdue"]),
        ({"theme": "missing-children"}, ["overdue"]),
        ({"owner": "null"}, ["later"]),
        ({"due_before": str(TODAY)}, ["closed", "overdue"]),
        ({"due_after": str(TODAY), "due_before": str(TODAY + dt.timedelta(days=10))}, ["soon"]),
        ({"q": "CC1"}, ["overdue"]),
        ({"ordering": "-next_review_due"}, ["later", "soon", "overdue", "closed"]),
    ],
)
def test_recommendations_filter_and_order_like_the_pages(plan, lead_api, query, expected):
    assert ids(lead_api.get("/api/recommendations/", query)) == [plan[name].pk for name in expected]


def test_the_owner_filter_takes_a_colleague(plan, lead_api, otto):
    assert ids(lead_api.get("/api/recommendations/", {"owner": otto.pk})) == [plan["soon"].pk]


def test_an_owner_lists_only_what_they_own(plan, olly, client_for):
    assert ids(client_for(olly).get("/api/recommendations/")) == [plan["closed"].pk, plan["overdue"].pk]


def test_pages_link_to_each_other_by_cursor(plan, lead_api):
    first = lead_api.get("/api/recommendations/", {"page_size": 3}).json()

    assert set(first) == {"next", "previous", "results"}  # no count: nothing counts every row
    assert first["previous"] is None
    assert len(first["results"]) == 3
    second = lead_api.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [plan["later"].pk]
    assert second["next"] is None
    back = lead_api.get(second["previous"]).json()
    assert back["results"] == first["results"]
    assert back["previous"] is None


@pytest.mark.parametrize("ordering", ["-next_review_due", "title", "-title", "status", "rag", "target_date", "-id"])
def test_following_next_walks_every_ordering_once_each(plan, lead_api, ordering, org):
    # Ties (same title, same date) and empty target dates: the id breaks ties, NULL sorts last.
    for n in range(7):
        RecommendationFactory(
            finding__inspection__organisation=org,
            title="Same title",
            next_review_due=TODAY,
            target_date=None if n % 2 else TODAY,
        )
    expected = ids(lead_api.get("/api/recommendations/", {"ordering": ordering, "page_size": 200}))
    walked, url = [], "/api/recommendations/"
    params = {"ordering": ordering, "page_size": 2}
    while url:
        page = lead_api.get(url, params).json()
        walked += [item["id"] for item in page["results"]]
        url, params = page["next"], None
    assert walked == expected and len(walked) == 11


@pytest.mark.parametrize("cursor", ["garbage", "eyJiIjpmYWxzZSwidiI6WzFdfQ", "eyJiIjpmYWxzZSwidiI6WyJ4IiwxXX0"])
def test_a_cursor_that_is_not_one_is_a_400(plan, lead_api, cursor):
    response = lead_api.get("/api/recommendations/", {"cursor": cursor})

    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


def test_a_recommendation_says_what_the_caller_may_do_now_and_why_not(plan, client_for, olly, rita):
    rec = plan["overdue"]  # not started, no evidence

    mine = client_for(olly).get(f"/api/recommendations/{rec.pk}/").json()
    # The owner also plans the work and its measures (issue 16).
    assert mine["allowed_actions"] == [
        "add_evidence",
        "enter_measure_data",
        "manage_measures",
        "manage_plan",
        "set_rag",
        "update",
        "update_plan_action",
        "view",
    ]
    assert mine["blocked_actions"] == {
        "submit": "Only a recommendation in progress can be submitted for assurance; this one is not started."
    }
    theirs = client_for(rita).get(f"/api/recommendations/{rec.pk}/").json()
    assert theirs["allowed_actions"] == ["view"]
    assert set(theirs["blocked_actions"]) == {"close", "return", "review_evidence", "override_outcome_gate"}


def test_a_recommendation_reads_as_drf_would_write_its_declared_fields(plan, lead_api, lead, olly):
    # RecommendationSerializer writes its fields out by hand, for speed: the same JSON as DRF's own walk.
    Recommendation.objects.filter(pk=plan["later"].pk).update(
        target_date=TODAY + dt.timedelta(days=9), rag="green", status=Recommendation.Status.IN_PROGRESS
    )
    Recommendation.objects.filter(pk=plan["closed"].pk).update(
        status=Recommendation.Status.SUPERSEDED, superseded_by=plan["soon"], target_date=TODAY
    )
    # Times in summer and in winter (the time zone's two offsets), with and without microseconds.
    Recommendation.objects.filter(pk=plan["soon"].pk).update(
        created_at=dt.datetime(2025, 7, 1, 23, 30, tzinfo=dt.UTC),
        updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    )
    EvidenceFactory(recommendation=plan["soon"], added_by=olly)
    rows = policy.with_facts(permissions.visible_recommendations(lead).with_related(), lead).order_by("pk")
    serializer = RecommendationSerializer(context={"request": SimpleNamespace(user=lead)})
    by_drf = json.loads(JSONRenderer().render([ModelSerializer.to_representation(serializer, rec) for rec in rows]))

    listed = lead_api.get("/api/recommendations/", {"ordering": "id"}).json()["results"]
    assert listed == by_drf and len(listed) == 4
    assert {rec["status"] for rec in listed} == {"not_started", "in_progress", "superseded"}
    assert [lead_api.get(f"/api/recommendations/{rec['id']}/").json() for rec in listed] == by_drf


def test_the_filter_form_is_built_only_when_a_filter_is_named(plan, lead_api, monkeypatch):
    built = []
    monkeypatch.setattr(RecommendationFilter, "__init__", _counted(RecommendationFilter.__init__, built))

    assert len(ids(lead_api.get("/api/recommendations/", {"page_size": 10, "ordering": "title"}))) == 4
    assert lead_api.get(f"/api/recommendations/{plan['soon'].pk}/").status_code == 200
    assert built == []
    assert ids(lead_api.get("/api/recommendations/", {"overdue": "true", "page_size": 10})) == [plan["overdue"].pk]
    assert lead_api.get(f"/api/recommendations/{plan['soon'].pk}/", {"overdue": "true"}).status_code == 404
    assert len(built) == 2


def _counted(init, calls: list):
    def counting(self, *args, **kwargs):
        calls.append(self)
        init(self, *args, **kwargs)

    return counting


def test_findings_can_be_searched_and_filtered_by_theme(plan, lead_api):
    found = lead_api.get("/api/findings/", {"search": "Missing children"}).json()["results"]

    assert [item["reference"] for item in found] == ["CC1"]
    assert found[0]["themes"] == [{"slug": "missing-children", "name": "Missing children"}]
    assert found[0]["recommendation"] == plan["overdue"].pk
    assert [f["id"] for f in lead_api.get("/api/findings/", {"theme": "missing-children"}).json()["results"]] == [
        plan["overdue"].finding_id
    ]
