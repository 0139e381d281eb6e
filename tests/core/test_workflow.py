"""Every transition of the status workflow, allowed and refused, with who, when and why recorded."""

import datetime as dt

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import EvidenceFactory, RecommendationFactory
from tracker import workflow
from tracker.models import Evidence, Finding, Recommendation, RecommendationEvent
from tracker.permissions import NotPermitted
from tracker.uploads import check_upload

Status = Recommendation.Status
Event = RecommendationEvent.Action


def actions(rec):
    return list(rec.events.values_list("action", flat=True))


def in_progress_with_evidence(rec, owner, category=Evidence.Category.OUTCOME):
    workflow.post_update(rec, by=owner, narrative="Audit of missing-child cases started.")
    workflow.add_evidence(rec, by=owner, kind="note", category=category, description="Audit", note="20 cases sampled")
    rec.refresh_from_db()
    return rec


def submitted(rec, owner):
    rec = in_progress_with_evidence(rec, owner)
    return workflow.submit_for_assurance(rec, by=owner)


class TestProgressUpdates:
    def test_first_update_starts_work_and_is_recorded(self, rec, olly):
        update = workflow.post_update(rec, by=olly, narrative="Missing-person policy rewritten.", rag="amber")

        rec.refresh_from_db()
        assert rec.status == Status.IN_PROGRESS
        assert rec.rag == "amber"
        assert update.author == olly
        assert actions(rec) == [Event.STARTED, Event.UPDATE, Event.RAG_CHANGED]
        assert rec.history.first().history_user == olly

    def test_completing_an_overdue_review_moves_the_next_review_on_from_today(self, rec, olly):
        Recommendation.objects.filter(pk=rec.pk).update(next_review_due=dt.date(2025, 3, 1))
        rec.refresh_from_db()
        with time_machine.travel(dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC), tick=False):
            workflow.post_update(rec, by=olly, narrative="Reviewed with the DCI.", review_completed=True)

        rec.refresh_from_db()
        assert rec.next_review_due == dt.date(2025, 3, 10) + dt.timedelta(days=rec.review_interval_days)
        event = rec.events.get(action=Event.REVIEW_COMPLETED)
        assert (event.old_value, event.new_value) == ("2025-03-01", str(rec.next_review_due))

    def test_completing_a_review_early_moves_the_next_review_on_from_the_due_date(self, rec, olly):
        """Reviewing before the due date never leaves the date where it was ("from 29 December to 29 December")."""
        Recommendation.objects.filter(pk=rec.pk).update(next_review_due=dt.date(2025, 4, 7), review_interval_days=28)
        rec.refresh_from_db()
        with time_machine.travel(dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC), tick=False):
            assert workflow.next_review_after_completion(rec) == dt.date(2025, 5, 5)
            workflow.post_update(rec, by=olly, narrative="Reviewed early.", review_completed=True)

        rec.refresh_from_db()
        assert rec.next_review_due == dt.date(2025, 5, 5)

    def test_an_update_without_a_narrative_is_refused(self, rec, olly):
        with pytest.raises(workflow.WorkflowError, match="Write what has happened"):
            workflow.post_update(rec, by=olly, narrative="   ")
        assert rec.updates.count() == 0

    def test_an_update_on_a_closed_recommendation_is_refused(self, rec, olly, rita):
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        workflow.close(rec, by=rita)

        with pytest.raises(workflow.WorkflowError, match=r"only while it is open\. A governance lead can reopen it"):
            workflow.post_update(rec, by=olly, narrative="More work")

    def test_another_owner_cannot_post_an_update(self, rec, otto):
        with pytest.raises(NotPermitted):
            workflow.post_update(rec, by=otto, narrative="Not mine")
        assert rec.updates.count() == 0

    def test_a_stale_version_is_refused_and_changes_nothing(self, rec, olly, lead):
        loaded = rec.version
        workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 1, 31))

        with pytest.raises(workflow.StaleRecommendation, match="changed by someone else"):
            workflow.post_update(rec, by=olly, narrative="Typed on an old page", expected_version=loaded)
        assert rec.updates.count() == 0


class TestSubmitForAssurance:
    def test_owner_submits_with_evidence(self, rec, olly):
        rec = submitted(rec, olly)
        assert rec.status == Status.AWAITING_ASSURANCE
        assert rec.events.get(action=Event.SUBMITTED).actor == olly

    def test_submitting_without_evidence_is_refused(self, rec, olly):
        workflow.post_update(rec, by=olly, narrative="Started")
        with pytest.raises(workflow.WorkflowError, match="at least one piece of evidence"):
            workflow.submit_for_assurance(rec, by=olly)
        rec.refresh_from_db()
        assert rec.status == Status.IN_PROGRESS

    def test_rejected_evidence_does_not_count(self, rec, olly, rita):
        rec = in_progress_with_evidence(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=False, reason="Not an audit")
        with pytest.raises(workflow.WorkflowError, match="at least one piece of evidence"):
            workflow.submit_for_assurance(rec, by=olly)

    def test_a_cause_of_concern_needs_outcome_evidence_not_only_outputs(self, org, olly):
        rec = RecommendationFactory(
            finding__inspection__organisation=org, finding__kind=Finding.Kind.CAUSE_OF_CONCERN, owner=olly
        )
        rec = in_progress_with_evidence(rec, olly, category=Evidence.Category.OUTPUT)
        with pytest.raises(workflow.WorkflowError, match="outcome for children"):
            workflow.submit_for_assurance(rec, by=olly)

        workflow.add_evidence(
            rec, by=olly, kind="note", category="outcome", description="Response times audited", note="Median 40 min"
        )
        assert workflow.submit_for_assurance(rec, by=olly).status == Status.AWAITING_ASSURANCE

    def test_a_not_started_recommendation_cannot_be_submitted(self, rec, olly):
        with pytest.raises(workflow.WorkflowError, match="Only a recommendation in progress"):
            workflow.submit_for_assurance(rec, by=olly)

    def test_a_viewer_cannot_submit(self, rec, olly, vic):
        rec = in_progress_with_evidence(rec, olly)
        with pytest.raises(NotPermitted):
            workflow.submit_for_assurance(rec, by=vic)


class TestAssurance:
    def test_reviewer_accepts_evidence_and_closes(self, rec, olly, rita):
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        rec = workflow.close(rec, by=rita)

        assert rec.status == Status.CLOSED
        assert rec.events.get(action=Event.CLOSED).actor == rita
        evidence = rec.evidence.get()
        assert (evidence.verdict, evidence.reviewed_by) == (Evidence.Verdict.ACCEPTED, rita)

    def test_the_owner_cannot_close_their_own_recommendation(self, org, lead):
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=lead)
        rec = submitted(rec, lead)
        EvidenceFactory(recommendation=rec, added_by=lead, verdict="accepted", reviewed_by=None)
        rec.evidence.filter(verdict="pending").update(verdict="accepted")

        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.close(rec, by=lead)
        rec.refresh_from_db()
        assert rec.status == Status.AWAITING_ASSURANCE

    def test_evidence_cannot_be_reviewed_by_its_owner(self, org, lead):
        rec = RecommendationFactory(finding__inspection__organisation=org, owner=lead)
        rec = in_progress_with_evidence(rec, lead)
        with pytest.raises(workflow.WorkflowError, match="four eyes"):
            workflow.review_evidence(rec.evidence.get(), by=lead, accept=True)

    def test_closing_with_evidence_still_pending_is_refused(self, rec, olly, rita):
        rec = submitted(rec, olly)
        with pytest.raises(workflow.WorkflowError, match="still await a verdict"):
            workflow.close(rec, by=rita)

    def test_a_cause_of_concern_closes_only_with_accepted_outcome_evidence(self, org, olly, rita):
        rec = RecommendationFactory(
            finding__inspection__organisation=org, finding__kind=Finding.Kind.CAUSE_OF_CONCERN, owner=olly
        )
        rec = in_progress_with_evidence(rec, olly, category=Evidence.Category.OUTPUT)
        workflow.add_evidence(rec, by=olly, kind="note", category="outcome", description="Audit", note="Done")
        workflow.submit_for_assurance(rec, by=olly)
        output = rec.evidence.get(category="output")
        outcome = rec.evidence.get(category="outcome")
        workflow.review_evidence(output, by=rita, accept=True)
        workflow.review_evidence(outcome, by=rita, accept=False, reason="Sample too small")

        with pytest.raises(workflow.WorkflowError, match="accepted evidence of an outcome"):
            workflow.close(rec, by=rita)

    def test_rejecting_needs_a_reason_and_returns_to_in_progress(self, rec, olly, rita):
        rec = submitted(rec, olly)
        with pytest.raises(workflow.WorkflowError, match="Give a reason"):
            workflow.reject(rec, by=rita, reason=" ")

        rec = workflow.reject(rec, by=rita, reason="Evidence shows training, not outcomes")
        assert rec.status == Status.IN_PROGRESS
        assert rec.events.get(action=Event.REJECTED).reason == "Evidence shows training, not outcomes"

    def test_rejecting_evidence_needs_a_reason(self, rec, olly, rita):
        rec = in_progress_with_evidence(rec, olly)
        with pytest.raises(workflow.WorkflowError, match="Give a reason"):
            workflow.review_evidence(rec.evidence.get(), by=rita, accept=False, reason="")
        assert rec.evidence.get().verdict == Evidence.Verdict.PENDING

    def test_an_owner_cannot_act_as_reviewer(self, rec, olly, otto):
        rec = submitted(rec, olly)
        with pytest.raises(NotPermitted):
            workflow.close(rec, by=otto)

    def test_only_awaiting_assurance_can_be_rejected(self, rec, rita):
        with pytest.raises(workflow.WorkflowError, match="Only a recommendation awaiting assurance"):
            workflow.reject(rec, by=rita, reason="No")


class TestReopenSupersedeAndPlanChanges:
    def closed(self, rec, olly, rita):
        rec = submitted(rec, olly)
        workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
        return workflow.close(rec, by=rita)

    def test_lead_reopens_a_closed_recommendation_with_a_reason(self, rec, olly, rita, lead):
        rec = self.closed(rec, olly, rita)
        with pytest.raises(workflow.WorkflowError, match="Give a reason"):
            workflow.reopen(rec, by=lead, reason="")
        rec = workflow.reopen(rec, by=lead, reason="Repeat audit found slow responses again")
        assert rec.status == Status.IN_PROGRESS

    def test_a_reviewer_cannot_reopen(self, rec, olly, rita):
        rec = self.closed(rec, olly, rita)
        with pytest.raises(NotPermitted, match="governance lead"):
            workflow.reopen(rec, by=rita, reason="Because")

    def test_only_a_closed_recommendation_can_be_reopened(self, rec, lead):
        with pytest.raises(workflow.WorkflowError, match="Only a closed"):
            workflow.reopen(rec, by=lead, reason="Why not")

    def test_superseding_points_at_the_replacement(self, org, rec, lead):
        replacement = RecommendationFactory(finding__inspection=rec.finding.inspection)
        rec = workflow.supersede(rec, by=lead, replacement=replacement, reason="Merged into the new plan")
        assert (rec.status, rec.superseded_by) == (Status.SUPERSEDED, replacement)

    def test_a_recommendation_cannot_supersede_itself_or_cross_organisations(self, rec, lead, other_org):
        with pytest.raises(workflow.WorkflowError, match="cannot supersede itself"):
            workflow.supersede(rec, by=lead, replacement=rec, reason="Loop")
        foreign = RecommendationFactory(finding__inspection__organisation=other_org)
        with pytest.raises(workflow.InvalidInput, match="your own organisation"):
            workflow.supersede(rec, by=lead, replacement=foreign, reason="Wrong force")
        rec.refresh_from_db()
        assert rec.status == Status.NOT_STARTED

    def test_a_closed_recommendation_cannot_be_superseded(self, rec, olly, rita, lead):
        rec = self.closed(rec, olly, rita)
        replacement = RecommendationFactory(finding__inspection=rec.finding.inspection)
        with pytest.raises(workflow.WorkflowError, match="closed; it can be superseded only while it is open"):
            workflow.supersede(rec, by=lead, replacement=replacement, reason="Late")

    def test_moving_a_target_date_needs_a_reason_but_setting_the_first_does_not(self, rec, lead):
        rec = workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 3, 31))
        with pytest.raises(workflow.WorkflowError, match="moving the target date"):
            workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 6, 30))

        rec = workflow.change_target_date(rec, by=lead, target_date=dt.date(2026, 6, 30), reason="Audit delayed")
        event = rec.events.filter(action=Event.TARGET_DATE_CHANGED).last()
        assert (event.old_value, event.new_value, event.reason) == ("2026-03-31", "2026-06-30", "Audit delayed")

    def test_an_owner_cannot_move_their_own_target_date(self, rec, olly):
        with pytest.raises(NotPermitted):
            workflow.change_target_date(rec, by=olly, target_date=dt.date(2027, 1, 1))

    def test_assigning_an_owner_from_another_organisation_is_refused(self, rec, lead, mallory):
        with pytest.raises(workflow.InvalidInput, match="choose someone from your organisation"):
            workflow.assign_owner(rec, by=lead, owner=mallory)

    def test_assigning_an_inactive_owner_is_refused(self, rec, lead, otto):
        otto.is_active = False
        otto.save()
        with pytest.raises(workflow.WorkflowError, match="no longer active"):
            workflow.assign_owner(rec, by=lead, owner=otto)

    def test_reassignment_is_recorded_with_old_and_new_owner(self, rec, lead, olly, otto):
        rec = workflow.assign_owner(rec, by=lead, owner=otto, reason="Olly moved to CID")
        event = rec.events.get(action=Event.OWNER_CHANGED)
        assert (event.old_value, event.new_value, event.actor) == (str(olly), str(otto), lead)

    def test_a_lead_of_another_organisation_is_refused(self, rec, mallory):
        with pytest.raises(NotPermitted):
            workflow.change_review_interval(rec, by=mallory, days=7)

    def test_review_interval_must_be_positive(self, rec, lead):
        with pytest.raises(workflow.InvalidInput, match="from 1 to 366"):
            workflow.change_review_interval(rec, by=lead, days=0)


class TestEvidence:
    def test_a_file_is_stored_under_a_generated_name(self, rec, olly, settings):
        upload = check_upload(SimpleUploadedFile("audit.pdf", b"%PDF-1.4 audit"))
        evidence = workflow.add_evidence(
            rec, by=olly, kind="file", category="outcome", description="Audit", upload=upload
        )
        assert evidence.original_filename == "audit.pdf"
        assert "audit" not in evidence.file.name
        assert (settings.EVIDENCE_ROOT / evidence.file.name).read_bytes() == b"%PDF-1.4 audit"
        with pytest.raises(ValueError, match="no public URL"):
            evidence.file.url  # noqa: B018

    def test_a_write_that_fails_after_storing_the_file_leaves_nothing_on_disk(self, rec, olly, settings, monkeypatch):
        def fail(*args, **kwargs):
            raise RuntimeError("database went away")

        monkeypatch.setattr(workflow, "_save", fail)
        upload = check_upload(SimpleUploadedFile("audit.pdf", b"%PDF-1.4 audit"))
        with pytest.raises(RuntimeError):
            workflow.add_evidence(rec, by=olly, kind="file", category="outcome", description="Audit", upload=upload)

        assert settings.EVIDENCE_ROOT.exists(), "the file was written before the failure"
        assert [p for p in settings.EVIDENCE_ROOT.rglob("*") if p.is_file()] == []
        assert rec.evidence.count() == 0

    def test_evidence_needs_its_content_and_a_description(self, rec, olly):
        with pytest.raises(workflow.WorkflowError, match="Provide the link"):
            workflow.add_evidence(rec, by=olly, kind="link", category="output", description="Slides", link="")
        with pytest.raises(workflow.WorkflowError, match="Say what this evidence shows"):
            workflow.add_evidence(rec, by=olly, kind="note", category="output", description="", note="x")
