"""The lists scale: the page does not grow with the data, deep pages cost what the first costs, and the
organisation copied onto each recommendation is always its finding's inspection's."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.db import connection
from django.db.models import F, Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import InspectionFactory, RecommendationFactory, UserFactory
from tracker import filters, search, views, workflow
from tracker.forms import SORTS
from tracker.models import Finding, Recommendation
from tracker.permissions import Role
from tracker.seeding import seed

pytestmark = pytest.mark.django_db

LIST = reverse("tracker:recommendations")
DUE = timezone.localdate() + dt.timedelta(days=40)  # one date for all: every row renders the same length


def _add(inspection, owners: list, start: int, count: int) -> None:
    """``count`` recommendations of equal rendered length, spread over ``owners``."""
    findings = Finding.objects.bulk_create(
        Finding(inspection=inspection, reference=f"R{n:05d}", kind="concern", title=f"Finding {n:05d}", summary="-")
        for n in range(start, start + count)
    )
    Recommendation.objects.bulk_create(
        Recommendation(
            finding=finding,
            organisation_id=inspection.organisation_id,
            title=finding.title,
            owner=owners[n % len(owners)],
            review_interval_days=28,
            next_review_due=DUE,
        )
        for n, finding in enumerate(findings)
    )


def _owners(org, start: int, count: int) -> list:
    return [
        UserFactory(
            username=f"owner{n:05d}", first_name="Owner", last_name=f"{n:05d}", organisation=org, roles=[Role.OWNER]
        )
        for n in range(start, start + count)
    ]


def _options(html: str) -> int:
    return html.count("<option")


@pytest.mark.parametrize("query", ["", "?sort=owner", "?status=not_started&sort=title", "?owner_name=Owner"])
def test_the_list_page_does_not_grow_with_recommendations_or_users(client, rita, org, inspection, query):
    client.force_login(rita)
    owners = _owners(org, 0, 10)
    _add(inspection, owners, 0, 60)  # more than one page already
    small = client.get(LIST + query).content.decode()

    owners += _owners(org, 10, 300)  # 300 more people, each owning something
    _add(inspection, owners, 60, 300)
    large = client.get(LIST + query).content.decode()

    assert "60 recommendations" in small and "360 recommendations" in large
    assert _options(large) == _options(small)
    # The counts gain a digit or two; nothing else may differ.
    assert abs(len(large) - len(small)) < 60, (len(small), len(large))


def _walk(client, url: str, rel: str = "next") -> list[str]:
    """Every recommendation link on every page, following Next (or Previous) from ``url`` to the end, each
    page's links in the order shown."""
    pages = []
    while url:
        html = client.get(url).content.decode()
        pages.append(re.findall(r'href="(/recommendations/\d+/)"', html))
        following = re.search(rf'href="([^"]+)" rel="{rel}"', html)
        url = LIST + unescape(following.group(1)) if following else None
    return [link for page in (pages if rel == "next" else reversed(pages)) for link in page]


def _last_page(client, url: str) -> str:
    while following := re.search(r'href="([^"]+)" rel="next"', client.get(url).content.decode()):
        url = LIST + unescape(following.group(1))
    return url


@pytest.mark.parametrize("sort", list(SORTS))
def test_following_next_visits_every_recommendation_once_in_order(client, rita, org, inspection, olly, otto, sort):
    today = timezone.localdate()
    for n in range(120):  # ties on every key, empty owners and target dates
        RecommendationFactory(
            finding__inspection=inspection,
            title=f"Title {n % 3}",
            owner=[olly, otto, None][n % 3],
            status=["not_started", "in_progress"][n % 2],
            rag=["red", ""][n % 2],
            target_date=None if n % 4 else today,
            next_review_due=today + dt.timedelta(days=n % 5),
        )
    client.force_login(rita)

    seen = _walk(client, f"{LIST}?sort={sort}")

    assert len(seen) == len(set(seen)) == 120
    recs = {rec.get_absolute_url(): rec for rec in Recommendation.objects.select_related("finding", "owner")}

    def key(url: str) -> tuple:
        rec = recs[url]
        values = []
        for term in SORTS[sort]:
            value = rec
            for part in term.lstrip("-").split("__"):
                value = getattr(value, part) if value is not None else None
            # NULL after every value; a descending key compares reversed.
            value = (value is None, value if value is not None else 0)
            values.append(_Reversed(value) if term.startswith("-") else value)
        return tuple(values)

    assert seen == sorted(seen, key=key)
    # And back: Previous from the last page shows the same pages in the same order.
    assert _walk(client, _last_page(client, f"{LIST}?sort={sort}"), rel="prev") == seen


class _Reversed:
    def __init__(self, value) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value


def test_the_last_page_costs_the_queries_of_the_first_and_no_offset_or_count(client, rita, org, inspection):
    _add(inspection, _owners(org, 0, 3), 0, 260)
    client.force_login(rita)
    url, pages = LIST, []
    while url:
        with CaptureQueriesContext(connection) as captured:
            html = client.get(url).content.decode()
        pages.append([q["sql"] for q in captured.captured_queries])
        following = re.search(r'href="([^"]+)" rel="next"', html)
        url = LIST + unescape(following.group(1)) if following else None

    assert len(pages) == 6
    assert {len(sql) for sql in pages} == {len(pages[0])}
    for sql in pages:
        assert not any(" OFFSET " in q for q in sql)
        # One grouped count (by status, with the overdue ones folded in) and no COUNT of every row.
        assert sum("COUNT(" in q for q in sql) == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
@pytest.mark.parametrize("sort", ["due", "-due", "title", "status", "rag"])
def test_each_indexed_order_is_read_from_an_index_without_sorting(client, rita, org, inspection, sort):
    _add(inspection, _owners(org, 0, 3), 0, 120)
    client.force_login(rita)
    first = client.get(f"{LIST}?sort={sort}").content.decode()
    following = unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))
    with CaptureQueriesContext(connection) as captured:
        client.get(LIST + following)
    # The page's ids: the query that orders and limits.
    (ids_sql,) = [q["sql"] for q in captured.captured_queries if "LIMIT 51" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {ids_sql}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INDEX rec_org_" in plan or "USING COVERING INDEX rec_org_" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


# The matching people by their ids, and (past NAMES_LISTED) by a subquery.
@pytest.mark.parametrize("names_listed", [filters.NAMES_LISTED, 0])
def test_the_owner_filter_finds_people_by_name_and_offers_no_list_of_people(
    client, rita, org, inspection, olly, names_listed, monkeypatch
):
    monkeypatch.setattr(filters, "NAMES_LISTED", names_listed)
    olly.first_name, olly.last_name = "Olive", "Oyelaran"
    olly.save()
    RecommendationFactory(finding__inspection=inspection, title="Hers", owner=olly)
    RecommendationFactory(finding__inspection=inspection, title="Nobody's", owner=None)
    client.force_login(rita)

    html = client.get(f"{LIST}?owner_name=oyel").content.decode()
    assert "1 recommendation<" in html and "Hers" in html
    assert "1 recommendation<" in client.get(f"{LIST}?owner_name=olly").content.decode()  # a username
    assert "0 recommendations" in client.get(f"{LIST}?owner_name=nobody+else").content.decode()
    unowned = client.get(f"{LIST}?owner=null").content.decode()
    assert "1 recommendation<" in unowned and "Nobody&#x27;s" in unowned
    chosen = client.get(f"{LIST}?owner={olly.pk}").content.decode()
    owner_select = re.search(r'<select[^>]*name="owner".*?</select>', chosen, re.S).group(0)
    assert owner_select.count("<option") == 3 and "Olive Oyelaran" in owner_select


def test_every_way_of_creating_a_recommendation_records_its_findings_organisation(other_org, mallory):
    seed()  # the seed files, through workflow.create_recommendation
    created = workflow.create_recommendation(
        Finding.objects.create(
            inspection=InspectionFactory(organisation=other_org), reference="N1", kind="concern", summary="-"
        ),
        by=mallory,
    )
    made = RecommendationFactory()

    assert created.organisation_id == other_org.pk
    assert made.organisation_id == made.finding.inspection.organisation_id
    assert Recommendation.objects.count() > 10
    assert not Recommendation.objects.exclude(organisation_id=F("finding__inspection__organisation_id")).exists()


def _mismatched() -> list[int]:
    return list(
        Recommendation.objects.exclude(organisation_id=F("finding__inspection__organisation_id")).values_list(
            "pk", flat=True
        )
    )


def test_the_organisation_copy_is_right_through_imports_the_admin_and_the_api(client, org, other_org, lead, olly):
    """Every other door that creates or moves a recommendation: an import (bulk inserts), the admin's add
    form, the admin's change of a finding's inspection, and the API's workflow actions (superseding makes
    no row of its own there: recommendations come from seeding, imports and the admin)."""
    from django.core.management import call_command

    from tests.oversight.test_imports import csv_bytes, good_row
    from tracker import imports

    call_command("loaddata", "groups", verbosity=0)
    rows = [good_row(Reference=f"R{n}", Themes="") for n in range(3)]
    assert imports.import_recommendations(csv_bytes(rows), by=lead).rows == 3
    client.force_login(lead)
    here = InspectionFactory(organisation=org)
    finding = Finding.objects.create(inspection=here, reference="ADM1", kind="concern", summary="-")
    response = client.post(
        reverse("admin:tracker_recommendation_add"),
        {"finding": finding.pk, "title": "Added in the admin", "outcome_measure": "", "review_interval_days": 30},
    )
    assert response.status_code == 302
    # The admin moves a finding to another inspection of the organisation (another's is not offered).
    elsewhere = InspectionFactory(organisation=org)
    data = {"inspection": elsewhere.pk, "reference": "ADM1", "kind": "concern", "title": "T", "summary": "-"}
    data.update({f"quotations-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")})
    response = client.post(reverse("admin:tracker_finding_change", args=[finding.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Finding.objects.get(pk=finding.pk).inspection == elsewhere
    old, new = RecommendationFactory(finding__inspection=here), RecommendationFactory(finding__inspection=here)
    response = client.post(
        f"/api/recommendations/{old.pk}/supersede/",
        {"replacement": new.pk, "reason": "Merged", "version": old.version},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content

    assert Recommendation.objects.filter(finding__inspection__organisation=org).count() >= 6
    assert _mismatched() == []


# --- Search: an index on each database, the answers of LIKE ------------------------------------------

SEARCHES = [
    "missing",
    "MISSING",
    "Missing Children",
    "miss",
    "ss",
    "m",
    "sion of st",
    "50%",
    "5_",
    "'repeat'",
    '"quoted"',
    'say "hi"',
    "repeat*",
    "NEAR(fewer repeat)",
    "fewer OR nothing",
    "-",
    "AND",
    "café",
    "Ωmeg",
    "cc1",
    "CC",
    "afi3",
    "AFI",
    "zz-none",
    "%",
    "_",
    "\\",
    "children\nfound",
]


def _like(words: str) -> Q:
    """What ?q= has always meant, as plain LIKEs: the rule the indexes must agree with."""
    return (
        Q(finding__reference__iexact=words)
        | Q(title__icontains=words)
        | Q(finding__summary__icontains=words)
        | Q(outcome_measure__icontains=words)
    )


def _agree(searches=SEARCHES) -> None:
    for words in searches:
        indexed = set(Recommendation.objects.filter(search.matches(words)).values_list("pk", flat=True))
        plain = set(Recommendation.objects.filter(_like(words)).values_list("pk", flat=True))
        row_by_row = set(Recommendation.objects.filter(search.like(words)).values_list("pk", flat=True))
        assert indexed == plain == row_by_row, words


@pytest.fixture
def texts(inspection):
    made = [
        RecommendationFactory(
            finding__inspection=inspection,
            finding__reference="CC1",
            finding__summary="Supervision of staff was weak.",
            title="Respond to missing children",
            outcome_measure="Fewer 'repeat' episodes, 50% faster",
        ),
        RecommendationFactory(
            finding__inspection=inspection,
            finding__reference="AFI3",
            finding__summary='They say "hi" to café Ωmega',
            title="Improve the 5_year plan",
            outcome_measure="-",
        ),
        RecommendationFactory(
            finding__inspection=inspection,
            finding__reference="OBS1",
            finding__summary="back\\slash, 100%",
            title="Children found faster",
            outcome_measure="fewer OR nothing AND NEAR(fewer repeat)",
        ),
    ]
    return made


def test_search_finds_what_like_finds_for_every_kind_of_words(texts):
    assert Recommendation.objects.filter(search.matches("missing")).count() == 1  # the data is there
    _agree()


def test_search_stays_right_through_every_kind_of_write(texts, lead, inspection):
    first, second, third = texts
    workflow.edit_details(first, by=lead, title="Locate absent young people", outcome_measure="Quicker finds")
    finding = Finding.objects.get(pk=second.finding_id)
    finding.summary = "Reworded: supervision of missing cases"
    finding.save()
    Finding.objects.filter(pk=third.finding_id).update(summary="Bulk missing update")
    Recommendation.objects.filter(pk=third.pk).update(title="Raw update of the title", outcome_measure="")
    _add(inspection, [lead], 0, 3)  # bulk inserts
    RecommendationFactory(finding__inspection=inspection, title="Another missing child")
    Recommendation.objects.filter(pk=first.pk).delete()

    _agree([*SEARCHES, "absent young", "Quicker", "Reworded", "Bulk missing", "Raw update", "Finding 0000"])
    assert not Recommendation.objects.filter(search.matches("Locate absent")).exists()  # deleted


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 table and triggers")
def test_the_search_table_and_its_triggers_exist_after_every_migration(texts):
    """A migration that remakes tracker_recommendation or tracker_finding (SQLite copies the table) drops their
    triggers silently: it must call tracker.search.install again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert set(search.TRIGGERS) <= {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM tracker_recommendation_search")
        assert cursor.fetchone()[0] == Recommendation.objects.count()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
def test_a_search_reads_the_index_not_every_row(client, rita, texts):
    client.force_login(rita)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(f"{LIST}?q=missing").content.decode()
    assert "1 recommendation<" in html
    (ids_sql,) = [q["sql"] for q in captured.captured_queries if f"LIMIT {views.SEARCH_COUNT_LIMIT + 1}" in q["sql"]]
    assert "%missing%" not in ids_sql and "MATCH" in ids_sql
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {ids_sql}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "VIRTUAL TABLE INDEX" in plan, plan  # the trigrams
    assert "tracker_finding_reference_nocase" in plan, plan  # the reference, any case


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 table")
def test_a_first_page_of_a_search_reads_the_index_once_for_its_rows_and_counts(client, rita, texts):
    client.force_login(rita)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(LIST, {"q": "missing"}).content.decode()
    assert "1 recommendation<" in html
    assert len([q for q in captured.captured_queries if "MATCH" in q["sql"]]) == 1


def test_the_overdue_filter_splits_the_list_by_the_models_own_rule(rita, org, inspection, olly):
    today = timezone.localdate()
    for n, status in enumerate(["not_started", "in_progress", "awaiting_assurance", "closed", "superseded"] * 2):
        RecommendationFactory(
            finding__inspection=inspection,
            status="not_started" if status == "superseded" else status,
            next_review_due=today + dt.timedelta(days=-3 if n < 5 else 3),
        )
    from types import SimpleNamespace

    from tracker.filters import RecommendationFilter

    def listed(value: str) -> set[int]:
        filterset = RecommendationFilter(
            {"overdue": value}, queryset=Recommendation.objects.all(), request=SimpleNamespace(user=rita)
        )
        assert filterset.is_valid(), filterset.errors
        return set(filterset.qs.values_list("pk", flat=True))

    overdue = {rec.pk for rec in Recommendation.objects.all() if rec.is_overdue()}
    assert overdue and listed("true") == overdue
    assert listed("false") == set(Recommendation.objects.values_list("pk", flat=True)) - overdue
