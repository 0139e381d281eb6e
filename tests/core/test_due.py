"""Where a recommendation's review and target stand: one definition, and every interface agrees with it.

The rules live on Recommendation (``open_q``, ``overdue_q``, ``due_soon_q``, ``target_missed_q``); the
queryset filters by them and the model's methods test one instance against them. The first tests pin
the rules themselves; the rest show that the queryset, the model, and the pages, admin, dashboard
and board pack built on them agree over every combination of status, review date and target date.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from html import unescape

import pytest
import time_machine
from django.core.management import call_command
from django.template.loader import render_to_string
from django.urls import reverse

from tests.factories import InspectionFactory, RecommendationFactory, UserFactory
from tracker import boardpack, dashboard, inbox
from tracker.models import Recommendation
from tracker.permissions import Role

Status = Recommendation.Status
State = Recommendation.ReviewState

TODAY = dt.date(2026, 5, 13)
LEAD = 7


def day(offset: int | None) -> dt.date | None:
    return None if offset is None else TODAY + dt.timedelta(days=offset)


def rec_in(status: str, review: int, target: int | None = None) -> Recommendation:
    """An unsaved recommendation: the model's methods need no database."""
    return Recommendation(status=status, next_review_due=day(review), target_date=day(target))


@pytest.fixture(autouse=True)
def lead_days(settings):
    settings.REMINDER_LEAD_DAYS = LEAD


# --- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        (-30, State.OVERDUE),
        (-1, State.OVERDUE),  # the day after the review date
        (0, State.DUE_SOON),  # due today is not overdue yet
        (1, State.DUE_SOON),
        (LEAD, State.DUE_SOON),  # the last day of the lead window
        (LEAD + 1, State.LATER),
        (90, State.LATER),
    ],
)
@pytest.mark.parametrize("status", Recommendation.OPEN_STATUSES)
def test_an_open_recommendations_review_is_overdue_due_soon_or_later_by_its_date(status, review, expected):
    assert rec_in(status, review).review_state(TODAY) == expected


@pytest.mark.parametrize("status", [Status.CLOSED, Status.SUPERSEDED])
@pytest.mark.parametrize("review", [-30, 0, 3, 90])
def test_a_closed_or_superseded_recommendation_is_never_overdue_or_due(status, review):
    rec = rec_in(status, review, target=-10)

    assert rec.review_state(TODAY) == State(status)
    assert not rec.is_open
    assert not rec.is_overdue(TODAY)
    assert not rec.is_due_soon(TODAY)
    assert not rec.target_missed(TODAY)


def test_the_due_soon_window_is_the_reminder_lead_time_setting(settings):
    settings.REMINDER_LEAD_DAYS = 3

    assert rec_in(Status.IN_PROGRESS, 3).review_state(TODAY) == State.DUE_SOON
    assert rec_in(Status.IN_PROGRESS, 4).review_state(TODAY) == State.LATER
    assert rec_in(Status.IN_PROGRESS, 4).is_due_soon(TODAY, lead_days=4)


@pytest.mark.parametrize(("target", "missed"), [(None, False), (-1, True), (0, False), (1, False)])
def test_a_target_date_is_missed_only_once_it_has_passed_on_an_open_recommendation(target, missed):
    assert rec_in(Status.IN_PROGRESS, 30, target).target_missed(TODAY) is missed


def test_without_a_date_the_methods_use_todays_london_date():
    rec = rec_in(Status.NOT_STARTED, 0, target=0)
    with time_machine.travel(
        dt.datetime(2026, 5, 13, 23, 30, tzinfo=dt.UTC), tick=False
    ):  # 00:30 on the 14th in London
        assert rec.is_overdue()
        assert rec.target_missed()
        assert rec.review_state() == State.OVERDUE


# --- one definition: the queryset and the model agree over every combination -------------------

REVIEW_OFFSETS = [-30, -1, 0, 1, LEAD, LEAD + 1, 90]  # before, on and after today; in and out of the lead window
TARGET_OFFSETS = [None, -1, 0, 1]  # none, past, today, future


@pytest.fixture
def every_combination(db):
    inspection = InspectionFactory()
    replacement = RecommendationFactory(finding__inspection=inspection, status=Status.NOT_STARTED)
    recs = [
        RecommendationFactory(
            finding__inspection=inspection,
            status=status,
            superseded_by=replacement if status == Status.SUPERSEDED else None,
            next_review_due=day(review),
            target_date=day(target),
        )
        for status, review, target in itertools.product(Status.values, REVIEW_OFFSETS, TARGET_OFFSETS)
    ]
    return Recommendation.objects.filter(pk__in=[r.pk for r in recs]), recs


def test_the_queryset_and_the_model_agree_on_every_combination(every_combination):
    queryset, recs = every_combination
    members = {
        "open": set(queryset.open().values_list("pk", flat=True)),
        "overdue": set(queryset.overdue(TODAY).values_list("pk", flat=True)),
        "due_soon": set(queryset.due_soon(TODAY).values_list("pk", flat=True)),
        "target_missed": set(queryset.target_missed(TODAY).values_list("pk", flat=True)),
    }
    disagreements = []
    for rec in recs:
        state = rec.review_state(TODAY)
        said = {
            "open": rec.is_open and state not in (State.CLOSED, State.SUPERSEDED),
            "overdue": rec.is_overdue(TODAY) and state == State.OVERDUE,
            "due_soon": rec.is_due_soon(TODAY) and state == State.DUE_SOON,
            "target_missed": rec.target_missed(TODAY),
        }
        for name, yes in said.items():
            if yes != (rec.pk in members[name]):
                disagreements.append((rec.status, rec.next_review_due, rec.target_date, name, yes))
        if state == State.LATER and (
            rec.pk not in members["open"] or rec.pk in members["overdue"] | members["due_soon"]
        ):
            disagreements.append((rec.status, rec.next_review_due, rec.target_date, "later", True))
    assert disagreements == []
    # Every state and both answers about the target occur, so the agreement is not vacuous.
    assert {rec.review_state(TODAY) for rec in recs} == set(State)
    assert {rec.target_missed(TODAY) for rec in recs} == {True, False}


# --- the interfaces ask the same definition ----------------------------------------------------


@pytest.fixture
def mixed(org, olly):
    """Olly's recommendations in every state, one per (status, review date, target date)."""
    inspection = InspectionFactory(organisation=org)
    replacement = RecommendationFactory(finding__inspection=inspection, owner=olly, next_review_due=day(90))
    recs = [
        RecommendationFactory(
            finding__inspection=inspection,
            owner=olly,
            status=status,
            superseded_by=replacement if status == Status.SUPERSEDED else None,
            next_review_due=day(review),
            target_date=day(target),
        )
        for status, review, target in itertools.product(Status.values, [-1, 0, LEAD, LEAD + 1], [None, -1, 0])
    ]
    return inspection, [replacement, *recs]


def _pks(recs) -> set[int]:
    return {rec.pk for rec in recs}


def test_the_home_inbox_groups_by_the_models_review_state(client, olly, mixed):
    """Home's overdue and due-soon groups, whole (by the list's ``?group=``, the same condition as home's
    count), hold exactly what the model calls overdue and due soon; the counts on home agree."""
    _, recs = mixed
    client.force_login(olly)
    with time_machine.travel(dt.datetime(2026, 5, 13, 12, tzinfo=dt.UTC), tick=False):
        sections = client.get(reverse("tracker:home")).context["sections"]
        counts = {shown.group.key: shown.count for _title, groups in sections for shown in groups}
        members = {
            key: _pks(inbox.filter_group(Recommendation.objects.all(), olly, key))
            for key in ("overdue", "due_soon", "target_missed", "mine_rest")
        }

    expected = {"overdue": set(), "due_soon": set()}
    for rec in recs:
        state = rec.review_state(TODAY)
        if state in expected:
            expected[state].add(rec.pk)
    assert expected["overdue"] and expected["due_soon"]
    assert {key: members[key] for key in expected} == expected
    assert {key: counts[key] for key in members} == {key: len(pks) for key, pks in members.items()}
    # Each open recommendation is in one group only, and no closed or superseded one is in any.
    open_pks = {rec.pk for rec in recs if rec.is_open}
    assert sum(len(pks) for pks in members.values()) == len(open_pks) == len(set().union(*members.values()))


def test_the_dashboard_and_board_pack_count_what_the_queryset_finds(lead, mixed):
    inspection, recs = mixed
    scope = Recommendation.objects.filter(pk__in=_pks(recs))
    overdue, missed = scope.overdue(TODAY).count(), scope.target_missed(TODAY).count()
    assert overdue and missed

    board = dashboard.build(lead, inspection=inspection, today=TODAY)
    pack = boardpack.build(lead, inspection, since=TODAY, today=TODAY)

    assert (board.overdue_count, board.missed_count) == (overdue, missed)
    assert _pks(board.overdue) == set(scope.overdue(TODAY).values_list("pk", flat=True))
    assert _pks(board.missed) == set(scope.target_missed(TODAY).values_list("pk", flat=True))
    assert (pack.overdue, pack.missed_target) == (overdue, missed)


@pytest.fixture
def admin_lead(org):
    call_command("loaddata", "groups", verbosity=0)  # the role groups with their admin permissions
    return UserFactory(username="gl", organisation=org, roles=[Role.GOVERNANCE_LEAD], is_staff=True)


def test_the_admins_due_soon_filter_follows_the_lead_time_setting(settings, client, admin_lead, mixed):
    _, recs = mixed
    settings.REMINDER_LEAD_DAYS = 3
    client.force_login(admin_lead)
    url = reverse("admin:tracker_recommendation_changelist")
    with time_machine.travel(dt.datetime(2026, 5, 13, 12, tzinfo=dt.UTC), tick=False):
        shown = {
            value: _pks(client.get(url, {"review": value}).context["cl"].result_list)
            for value in ("overdue", "due_soon", "not_overdue")
        }
        page = client.get(url).content.decode()

    assert "Due within 3 days" in page
    assert shown["overdue"] == {rec.pk for rec in recs if rec.is_overdue(TODAY)}
    assert shown["due_soon"] == {rec.pk for rec in recs if rec.is_due_soon(TODAY, lead_days=3)}
    assert shown["not_overdue"] == {rec.pk for rec in recs if not rec.is_overdue(TODAY)}


def _tagged_rows(html: str) -> dict[int, bool]:
    """Recommendation id -> whether its table row carries the Overdue tag."""
    rows = {}
    for row in html.split('<tr class="govuk-table__row">')[1:]:
        if found := re.search(r'href="/recommendations/(\d+)/"', row):
            rows[int(found.group(1))] = "Overdue</strong>" in row
    return rows


def test_the_pages_tag_as_overdue_exactly_what_the_model_calls_overdue(client, lead, olly, mixed):
    _, recs = mixed
    expected = {rec.pk: rec.is_overdue(TODAY) for rec in recs}
    # The data must hold both kinds, or agreeing pages would prove nothing.
    assert set(expected.values()) == {True, False}
    with time_machine.travel(dt.datetime(2026, 5, 13, 12, tzinfo=dt.UTC), tick=False):
        client.force_login(olly)
        home = _tagged_rows(client.get(reverse("tracker:home")).content.decode())
        client.force_login(lead)
        listed, url = {}, reverse("tracker:recommendations")
        while url:  # every page, by its Next link
            html = client.get(url).content.decode()
            listed |= _tagged_rows(html)
            following = re.search(r'href="([^"]+)" rel="next"', html)
            url = reverse("tracker:recommendations") + unescape(following.group(1)) if following else None

    # Home shows the first rows of each group: each it shows is tagged as the model says.
    assert home and home.items() <= expected.items()
    assert listed == expected


def test_the_board_pack_marks_overdue_reviews_and_missed_targets_as_the_model_does(lead, mixed):
    inspection, recs = mixed
    pack = boardpack.build(lead, inspection, since=TODAY, today=TODAY)
    html = render_to_string("tracker/oversight/board_pack_body.html", {"pack": pack, "shown": None})
    sections = dict(
        zip([rec.pk for rec in pack.recommendations], html.split('<div class="pack-rec">')[1:], strict=True)
    )

    assert {pk: "(overdue)" in s for pk, s in sections.items()} == {rec.pk: rec.is_overdue(TODAY) for rec in recs}
    assert {pk: "(missed)" in s for pk, s in sections.items()} == {rec.pk: rec.target_missed(TODAY) for rec in recs}
