"""List endpoints run the same number of queries for 10 rows as for 500: nothing is fetched per row."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import RecommendationFactory, ThemeFactory
from tracker.models import Evidence, Judgement, ProgressUpdate, Reminder

ENDPOINTS = ["recommendations", "findings", "inspections", "updates", "evidence", "reminders", "organisations"]


def add_rows(org, owner, reviewer, count: int) -> None:
    themes = [ThemeFactory(), ThemeFactory()]
    recs = RecommendationFactory.create_batch(count, finding__inspection__organisation=org, owner=owner)
    for rec in recs:
        rec.finding.themes.set(themes)
    Judgement.objects.bulk_create(
        Judgement(inspection=rec.finding.inspection, area="Missing children", grade="inadequate") for rec in recs
    )
    ProgressUpdate.objects.bulk_create(ProgressUpdate(recommendation=r, author=owner, narrative="Audit") for r in recs)
    Evidence.objects.bulk_create(
        Evidence(
            recommendation=r,
            kind="note",
            category="outcome",
            description="Audit",
            note="Median 40 minutes",
            added_by=owner,
            reviewed_by=reviewer,
            verdict="accepted",
        )
        for r in recs
    )
    Reminder.objects.bulk_create(
        Reminder(recommendation=r, recipient=owner, stage="due_soon", review_due=timezone.localdate()) for r in recs
    )


def queries_for(client, endpoint: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/api/{endpoint}/", {"page_size": 200})
    assert response.status_code == 200, response.content
    return len(captured), len(response.json()["results"])


def test_every_list_costs_the_same_queries_for_10_rows_as_for_500(org, olly, lead, rita, lead_api):
    add_rows(org, olly, rita, 10)
    few = {endpoint: queries_for(lead_api, endpoint) for endpoint in ENDPOINTS}
    add_rows(org, olly, rita, 490)
    many = {endpoint: queries_for(lead_api, endpoint) for endpoint in ENDPOINTS}

    assert {endpoint: count for endpoint, (count, _) in many.items()} == {
        endpoint: count for endpoint, (count, _) in few.items()
    }
    # The second page really is bigger (one organisation, however many rows).
    for endpoint in ENDPOINTS:
        assert (few[endpoint][1], many[endpoint][1]) == ((1, 1) if endpoint == "organisations" else (10, 200))
    # token and user, roles, whether the person ever touched an item (four eyes, policy.with_facts), the page's
    # ids (or the count), the page: nothing per row, and no measures when no decision needs them.
    assert few["recommendations"][0] == 5
