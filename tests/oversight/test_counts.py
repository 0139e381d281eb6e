"""The dashboard's kept counts (tracker.counts) always equal a fresh count of the rows, whatever wrote them:
seeding, the workflow, imports' bulk inserts, the admin, the API, bulk and raw SQL updates, deletions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.urls import reverse

from tests.factories import InspectionFactory, RecommendationFactory, ThemeFactory
from tracker import counts, dashboard, workflow
from tracker.models import Finding, Recommendation, RecommendationCount, Theme, ThemeCount, ThemeStatusCount

pytestmark = pytest.mark.django_db


def _kept_recommendations() -> list[tuple]:
    rows = RecommendationCount.objects.filter(n__gt=0)
    return sorted(rows.values_list("organisation_id", "inspection_id", "status", "rag", "n"))


def _fresh_recommendations() -> list[tuple]:
    rows = (
        Recommendation.objects.order_by()
        .values_list("organisation_id", "finding__inspection_id", "status", "rag")
        .annotate(n=Count("pk"))
    )
    return sorted(tuple(row) for row in rows)


def _kept_theme_statuses() -> list[tuple]:
    rows = ThemeStatusCount.objects.values_list("organisation_id", "theme_id", "status", "next_review_due", "n")
    return sorted(rows)


def _fresh_theme_statuses() -> list[tuple]:
    rows = (
        Recommendation.objects.filter(finding__themes__isnull=False)
        .order_by()
        .values_list("organisation_id", "finding__themes", "status", "next_review_due")
        .annotate(n=Count("pk"))
    )
    return sorted(tuple(row) for row in rows)


def _agree(*users) -> None:
    """The kept tables equal a fresh count, no counter is below zero (and no theme's row is left at zero),
    and the dashboard shows the same figures read from them as counted afresh."""
    assert _kept_recommendations() == _fresh_recommendations()
    assert _kept_theme_statuses() == _fresh_theme_statuses()
    everything = list(Finding.objects.values_list("inspection_id", flat=True).distinct())
    kept = ThemeCount.objects.filter(n__gt=0).values_list("theme_id", "inspection_id", "n")
    assert sorted(kept) == sorted(counts.fresh_themes_by_inspection(everything))
    assert not RecommendationCount.objects.filter(n__lt=0).exists()
    assert not ThemeCount.objects.filter(n__lt=0).exists()
    for user in users:
        assert _figures(user) == _figures(user, fresh=True)


def _figures(user, fresh: bool = False) -> tuple:
    original = counts.kept
    if fresh:
        counts.kept = lambda: False
    try:
        board = dashboard.build(user)
    finally:
        counts.kept = original
    rows = [
        (row.inspection.pk, row.total, row.by_status, row.by_rag, row.overdue, row.missed_target) for row in board.rows
    ]
    themes = [(row.slug, row.current_count, row.inspection_count, len(row.earlier)) for row in board.themes]
    return rows, board.by_status, board.by_rag, board.overdue_count, board.missed_count, themes


def test_the_kept_counts_equal_a_fresh_count_after_every_kind_of_write(client, org, other_org, lead, rita, olly):
    from tests.oversight.test_imports import csv_bytes, good_row
    from tracker import imports

    call_command("loaddata", "groups", verbosity=0)
    assert Recommendation.objects.filter(organisation=org).count() > 10  # seeded through the workflow
    _agree(rita)

    # The workflow: a new recommendation, a RAG rating, work started, superseded.
    here = InspectionFactory(organisation=org)
    first = workflow.create_recommendation(
        Finding.objects.create(inspection=here, reference="W1", kind="concern", summary="-"), by=lead
    )
    workflow.set_rag(first, by=lead, rag="red", reason="Slipping")
    workflow.post_update(Recommendation.objects.get(pk=first.pk), by=lead, narrative="Started", rag="amber")
    second = workflow.create_recommendation(
        Finding.objects.create(inspection=here, reference="W2", kind="concern", summary="-"), by=lead
    )
    workflow.supersede(Recommendation.objects.get(pk=first.pk), by=lead, replacement=second, reason="Merged")
    _agree(rita)

    # An import: bulk inserts of inspections, findings, their themes and recommendations.
    rows = [good_row(Reference=f"R{n}") for n in range(3)]
    assert imports.import_recommendations(csv_bytes(rows), by=lead).rows == 3
    _agree(rita)

    # The admin: a recommendation added, a finding moved to another inspection and given other themes.
    client.force_login(lead)
    finding = Finding.objects.create(inspection=here, reference="ADM1", kind="concern", summary="-")
    response = client.post(
        reverse("admin:tracker_recommendation_add"),
        {"finding": finding.pk, "title": "Added in the admin", "outcome_measure": "", "review_interval_days": 30},
    )
    assert response.status_code == 302
    elsewhere = InspectionFactory(organisation=org)
    theme = Theme.objects.order_by("pk").first()
    data = {"inspection": elsewhere.pk, "reference": "ADM1", "kind": "concern", "title": "T", "summary": "-"}
    data |= {"themes": [theme.pk]}
    data.update({f"quotations-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")})
    response = client.post(reverse("admin:tracker_finding_change", args=[finding.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Finding.objects.get(pk=finding.pk).inspection == elsewhere
    assert list(Finding.objects.get(pk=finding.pk).themes.all()) == [theme]
    _agree(rita)

    # The API's workflow action.
    old, new = RecommendationFactory(finding__inspection=here), RecommendationFactory(finding__inspection=here)
    response = client.post(
        f"/api/recommendations/{old.pk}/supersede/",
        {"replacement": new.pk, "reason": "Merged", "version": old.version},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    _agree(rita)

    # Bulk and raw SQL: a queryset's update, a finding becoming a strength and back, themes set and cleared.
    Recommendation.objects.filter(organisation=org, status="not_started").update(status="in_progress", rag="green")
    Recommendation.objects.filter(pk=new.pk).update(rag="")
    Recommendation.objects.filter(organisation=org, status="in_progress").update(next_review_due=dt.date(2031, 1, 1))
    some = Finding.objects.filter(inspection__organisation=org, themes__isnull=False).distinct().first()
    Finding.objects.filter(pk=some.pk).update(kind=Finding.Kind.STRENGTH)
    _agree(rita)
    Finding.objects.filter(pk=some.pk).update(kind="concern", inspection=here)
    extra = ThemeFactory(slug="counted")
    some.themes.add(extra)
    _agree(rita)
    some.themes.set([extra])
    some.themes.clear()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_recommendation SET status = 'closed' WHERE id = %s", [second.pk])
    _agree(rita)

    # A recommendation moved to another finding with other themes (one in common), by raw SQL.
    moved = RecommendationFactory(finding__inspection=here)
    moved.finding.themes.add(theme, ThemeFactory(slug="left-behind"))
    target = Finding.objects.create(inspection=here, reference="MOVED", kind="concern", summary="-")
    target.themes.add(theme, ThemeFactory(slug="taken-up"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_recommendation SET finding_id = %s WHERE id = %s", [target.pk, moved.pk])
    _agree(rita)

    # Deletions (not something staff can do, but a database fix might): a recommendation, its finding, a theme.
    lone = RecommendationFactory(finding__inspection=here)
    lone.finding.themes.add(extra)
    _agree(rita)
    lone_finding = lone.finding
    lone.delete()
    lone_finding.delete()
    extra.delete()
    _agree(rita)

    # Another organisation's writes count for it alone.
    RecommendationFactory(finding__inspection=InspectionFactory(organisation=other_org))
    _agree(rita)


def test_the_kept_counts_follow_a_finding_that_moves_with_its_recommendation(org, lead, rita):
    """A finding moved to another inspection takes its recommendation's count (and its themes') with it."""
    call_command("loaddata", "groups", verbosity=0)
    here, there = InspectionFactory(organisation=org), InspectionFactory(organisation=org)
    rec = RecommendationFactory(finding__inspection=here, status="in_progress", rag="amber")
    rec.finding.themes.add(ThemeFactory(slug="moved"))
    finding = Finding.objects.get(pk=rec.finding_id)
    finding.inspection = there
    finding.save()

    assert counts.by_inspection(org.pk, [here.pk]) == []
    assert counts.by_inspection(org.pk, [there.pk]) == [(there.pk, "in_progress", "amber", 1)]
    assert [row[:3] for row in counts.themes_by_inspection([here.pk, there.pk])] == [
        (finding.themes.get().pk, there.pk, 1)
    ]
    _agree(rita)


def test_overdue_and_missed_are_counted_for_today_not_kept(org, lead, rita):
    """What depends on the date is counted each time: tomorrow, today's due reviews are overdue."""
    call_command("loaddata", "groups", verbosity=0)
    today = dt.date.today()
    here = InspectionFactory(organisation=org)
    RecommendationFactory(finding__inspection=here, next_review_due=today, target_date=today)
    before = dashboard.build(rita, inspection=here, today=today)
    after = dashboard.build(rita, inspection=here, today=today + dt.timedelta(days=1))
    assert (before.overdue_count, before.missed_count) == (0, 0)
    assert (after.overdue_count, after.missed_count) == (1, 1)


def test_the_triggers_write_the_strength_kind_the_model_names():
    assert Finding.Kind.STRENGTH == "strength"  # spelled out in tracker.counts' SQL


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers")
def test_the_count_triggers_exist_after_every_migration():
    """A migration that remakes tracker_recommendation, tracker_finding or tracker_finding_themes (SQLite
    copies the table) drops their triggers silently: it must call tracker.counts.install again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert {*counts.TRIGGERS, *counts.THEME_STATUS_TRIGGERS} <= {row[0] for row in cursor.fetchall()}
