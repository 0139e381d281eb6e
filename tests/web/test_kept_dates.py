"""The columns kept on each recommendation by triggers (tracker.kept) equal the values computed afresh from its
events, progress updates and evidence, after every kind of write: the workflow, an import, the admin, a stale
instance saved, queryset and raw SQL updates, deletions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from tests.factories import InspectionFactory, RecommendationFactory, ThemeFactory
from tests.one_rule import submitted
from tracker import kept, policy, workflow
from tracker.models import KEPT_FIELDS, Evidence, Finding, ProgressUpdate, Recommendation, RecommendationEvent

pytestmark = pytest.mark.django_db

Event = RecommendationEvent.Action


def _fresh(rec: Recommendation) -> dict:
    submitted_at = rec.events.filter(action=Event.SUBMITTED).aggregate(at=Max("at"))["at"]
    last = ProgressUpdate.objects.filter(recommendation=rec).aggregate(at=Max("created_at"))["at"] or rec.created_at
    counts = Evidence.objects.filter(recommendation_id=rec.pk).aggregate(**policy._EVIDENCE_COUNTS)
    opened_at = policy._opened_at(rec)
    return {
        "submitted_at": submitted_at,
        "stuck_from": last + dt.timedelta(days=2 * rec.review_interval_days),
        **{f"evidence_{name}": n for name, n in counts.items()},
        "opened_at": opened_at,
        "outcome_gate_overridden": rec.events.filter(action=Event.OUTCOME_GATE_OVERRIDDEN, at__gte=opened_at).exists(),
        "inspection": Finding.objects.get(pk=rec.finding_id).inspection_id,
    }


def _agree() -> None:
    recs = list(Recommendation.objects.order_by("pk"))
    assert recs
    for rec in recs:
        kept_now = {name: getattr(rec, Recommendation._meta.get_field(name).attname) for name in KEPT_FIELDS}
        assert kept_now == _fresh(rec), rec.pk


def test_the_kept_dates_equal_fresh_ones_after_every_kind_of_write(client, org, other_org, lead, rita, olly):
    from tests.oversight.test_imports import csv_bytes, good_row
    from tracker import imports

    call_command("loaddata", "groups", verbosity=0)
    here = InspectionFactory(organisation=org)

    # The workflow: made, updated, submitted, rejected, submitted again, interval changed, closed and reopened.
    rec = workflow.create_recommendation(
        Finding.objects.create(inspection=here, reference="K1", kind="concern", summary="-"), by=lead
    )
    _agree()
    workflow.post_update(Recommendation.objects.get(pk=rec.pk), by=lead, narrative="Started")
    workflow.add_evidence(
        Recommendation.objects.get(pk=rec.pk), by=lead, kind="note", category="outcome", description="Audit", note="x"
    )
    workflow.submit_for_assurance(Recommendation.objects.get(pk=rec.pk), by=lead)
    _agree()
    assert Recommendation.objects.get(pk=rec.pk).submitted_at is not None
    workflow.reject(Recommendation.objects.get(pk=rec.pk), by=rita, reason="Not yet")
    workflow.submit_for_assurance(Recommendation.objects.get(pk=rec.pk), by=lead)
    workflow.change_review_interval(Recommendation.objects.get(pk=rec.pk), by=lead, days=7)
    _agree()

    # A stale instance saved in full (as the admin and factories do) puts back no old date.
    stale = Recommendation.objects.get(pk=rec.pk)
    workflow.post_update(Recommendation.objects.get(pk=rec.pk), by=lead, narrative="Later")
    stale.title = "Retitled"
    stale.save()
    _agree()

    # An import: bulk inserts of recommendations.
    ThemeFactory(slug="missing-children")
    rows = [good_row(Reference=f"R{n}") for n in range(3)]
    assert imports.import_recommendations(csv_bytes(rows), by=lead).rows == 3
    _agree()

    # The admin adds one.
    client.force_login(lead)
    finding = Finding.objects.create(inspection=here, reference="ADM1", kind="concern", summary="-")
    response = client.post(
        reverse("admin:tracker_recommendation_add"),
        {"finding": finding.pk, "title": "Added in the admin", "outcome_measure": "", "review_interval_days": 30},
    )
    assert response.status_code == 302
    _agree()

    # Queryset and raw SQL updates: dates moved, intervals changed, an update re-dated and moved to another item.
    long_ago = timezone.now() - dt.timedelta(days=400)
    Recommendation.objects.filter(organisation=org).update(created_at=long_ago)
    Recommendation.objects.filter(pk=rec.pk).update(review_interval_days=28)
    update = ProgressUpdate.objects.filter(recommendation=rec).latest("created_at")
    ProgressUpdate.objects.filter(pk=update.pk).update(created_at=long_ago - dt.timedelta(days=1))
    _agree()
    other = RecommendationFactory(finding__inspection=here)
    ProgressUpdate.objects.filter(pk=update.pk).update(recommendation=other)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_recommendation SET review_interval_days = 3 WHERE id = %s", [other.pk])
    _agree()

    # Deletions (not something staff can do, but a database fix might): an update, a submission.
    ProgressUpdate.objects.filter(recommendation=other).delete()
    RecommendationEvent.objects.filter(recommendation=rec, action=Event.SUBMITTED).order_by("-at").first().delete()
    _agree()

    # Another organisation's item.
    RecommendationFactory(finding__inspection=InspectionFactory(organisation=other_org))
    _agree()


def test_the_kept_facts_equal_fresh_ones_after_every_kind_of_write(org, olly, rita, lead):
    """Evidence counts, when it was last opened and whether an override was recorded since: what a list's
    decisions read (policy.with_facts)."""
    rec = RecommendationFactory(finding__inspection__organisation=org, finding__kind="cause_of_concern", owner=olly)
    _agree()
    # The workflow: evidence added, submitted, given verdicts; an override; closed, reopened, overridden again.
    rec = submitted(rec, olly)
    workflow.add_evidence(
        Recommendation.objects.get(pk=rec.pk), by=olly, kind="note", category="outcome", description="Audit", note="x"
    )
    _agree()
    first, second = Evidence.objects.filter(recommendation=rec).order_by("pk")
    workflow.review_evidence(first, by=rita, accept=True)
    workflow.review_evidence(second, by=rita, accept=False, reason="Not an outcome")
    _agree()
    workflow.override_outcome_gate(Recommendation.objects.get(pk=rec.pk), by=rita, reason="Audit shows change")
    rec = Recommendation.objects.get(pk=rec.pk)
    assert rec.outcome_gate_overridden is True and rec.evidence_accepted == 1 and rec.evidence_live == 1
    workflow.close(rec, by=rita)
    workflow.reopen(Recommendation.objects.get(pk=rec.pk), by=lead, reason="Audit found it again")
    rec = Recommendation.objects.get(pk=rec.pk)
    assert rec.outcome_gate_overridden is False and rec.opened_at > rec.created_at
    _agree()

    # Queryset, raw SQL and deletions: a verdict and a category changed, evidence moved to another item and
    # deleted, the reopening re-dated before the override and then deleted, an override moved.
    other = RecommendationFactory(finding__inspection__organisation=org)
    Evidence.objects.filter(pk=second.pk).update(verdict=Evidence.Verdict.PENDING, category="output")
    Evidence.objects.filter(pk=first.pk).update(recommendation=other)
    _agree()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_evidence SET verdict = 'accepted' WHERE id = %s", [second.pk])
    _agree()
    Evidence.objects.filter(pk=first.pk).delete()
    reopened = rec.events.get(action=Event.REOPENED)
    RecommendationEvent.objects.filter(pk=reopened.pk).update(at=rec.created_at + dt.timedelta(microseconds=1))
    _agree()
    assert Recommendation.objects.get(pk=rec.pk).outcome_gate_overridden is True
    reopened.delete()
    override = rec.events.get(action=Event.OUTCOME_GATE_OVERRIDDEN)
    RecommendationEvent.objects.filter(pk=override.pk).update(recommendation=other)
    _agree()
    RecommendationEvent.objects.filter(pk=override.pk).update(action=Event.UPDATE)
    Recommendation.objects.filter(pk=other.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    _agree()

    # A finding moved to another inspection (the admin could), and back by raw SQL; a recommendation moved to
    # another finding.
    elsewhere = InspectionFactory(organisation=org)
    Finding.objects.filter(pk=rec.finding_id).update(inspection=elsewhere)
    _agree()
    assert Recommendation.objects.get(pk=rec.pk).inspection_id == elsewhere.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracker_finding SET inspection_id = %s WHERE id = %s", [other.finding.inspection_id, rec.finding_id]
        )
    _agree()
    spare = Finding.objects.create(inspection=elsewhere, reference="SPARE", kind="recommendation", summary="-")
    Recommendation.objects.filter(pk=other.pk).update(finding=spare)
    _agree()

    # A stale instance saved in full puts back no old count.
    stale = Recommendation.objects.get(pk=rec.pk)
    workflow.add_evidence(
        Recommendation.objects.get(pk=rec.pk), by=olly, kind="note", category="output", description="More", note="y"
    )
    stale.title = "Retitled"
    stale.save()
    _agree()


def test_stuck_from_keeps_the_fraction_of_a_second():
    """Two review intervals after the last activity to the microsecond: "stuck" turns at that instant."""
    rec = RecommendationFactory(review_interval_days=14)
    at = dt.datetime(2026, 3, 28, 23, 30, 15, 123456, tzinfo=dt.UTC)  # across a change of the clocks in London
    Recommendation.objects.filter(pk=rec.pk).update(created_at=at)
    assert Recommendation.objects.get(pk=rec.pk).stuck_from == at + dt.timedelta(days=28)


def test_the_triggers_write_the_values_the_models_name():
    # Spelled out in tracker.kept's SQL.
    assert (Event.SUBMITTED, Event.REOPENED, Event.OUTCOME_GATE_OVERRIDDEN) == (
        "submitted",
        "reopened",
        "outcome_gate_overridden",
    )
    assert (Evidence.Verdict.PENDING, Evidence.Verdict.ACCEPTED, Evidence.Verdict.REJECTED) == (
        "pending",
        "accepted",
        "rejected",
    )
    assert Evidence.Category.OUTCOME == "outcome"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers")
def test_the_kept_date_triggers_exist_after_every_migration():
    """A migration that remakes tracker_recommendation, tracker_recommendationevent, tracker_progressupdate or
    tracker_evidence (SQLite copies the table) drops their triggers silently: it must call tracker.kept.install
    again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert set(kept.TRIGGERS) <= {row[0] for row in cursor.fetchall()}
