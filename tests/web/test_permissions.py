"""Who may open and post each staff form, as design.md says; refusals change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.factories import EvidenceFactory, RecommendationFactory
from tests.web.dates import target_date_post_data
from tracker import workflow
from tracker.models import AccessLog, Evidence, ProgressUpdate, Recommendation, RecommendationEvent
from tracker.uploads import check_upload

pytestmark = pytest.mark.django_db

OK, FORBIDDEN, NOT_FOUND = 200, 403, 404
# Persona -> expected status for each kind of action. otto owns nothing here; mallory is another force.
EXPECTED = {
    "view": {"lead": OK, "rita": OK, "olly": OK, "otto": NOT_FOUND, "vic": OK, "mallory": NOT_FOUND},
    "owner_work": {
        "lead": OK,
        "rita": FORBIDDEN,
        "olly": OK,
        "otto": NOT_FOUND,
        "vic": FORBIDDEN,
        "mallory": NOT_FOUND,
    },
    "review": {"lead": OK, "rita": OK, "olly": FORBIDDEN, "otto": NOT_FOUND, "vic": FORBIDDEN, "mallory": NOT_FOUND},
    "plan": {
        "lead": OK,
        "rita": FORBIDDEN,
        "olly": FORBIDDEN,
        "otto": NOT_FOUND,
        "vic": FORBIDDEN,
        "mallory": NOT_FOUND,
    },
}
PAGES = {
    "tracker:recommendation": "view",
    "tracker:update": "owner_work",
    "tracker:add-evidence": "owner_work",
    "tracker:submit": "owner_work",
    "tracker:decide": "review",
    "tracker:reopen": "plan",
    "tracker:reassign": "plan",
    "tracker:target-date": "plan",
}
FORMS = [name for name in PAGES if name != "tracker:recommendation"]
TARGET_BEFORE, TARGET_AFTER = dt.date(2029, 6, 30), dt.date(2030, 1, 1)


def _post_data(name: str, people: dict) -> dict:
    """A valid post for each form, so that a refusal is the permission check and not a form error."""
    return {
        "tracker:update": {"narrative": "Forged update", "rag": "green"},
        "tracker:add-evidence": {"kind": "note", "category": "outcome", "description": "Forged", "note": "Forged"},
        "tracker:submit": {},
        "tracker:decide": {"decision": "reject", "reason": "Forged"},
        "tracker:reopen": {"reason": "Forged"},
        "tracker:reassign": {"owner": people["otto"].pk, "reason": "Forged"},
        # The date as the page's date input posts it; tests/web/dates.py follows the widget.
        "tracker:target-date": target_date_post_data(TARGET_AFTER, reason="Forged"),
    }[name]


def _prepare(name: str, rec: Recommendation) -> None:
    """Put the recommendation where the action makes sense, so that an allowed post really changes it."""
    Status = Recommendation.Status
    if name == "tracker:submit":
        EvidenceFactory(recommendation=rec, category=Evidence.Category.OUTCOME)
    state = {
        "tracker:submit": Status.IN_PROGRESS,
        "tracker:decide": Status.AWAITING_ASSURANCE,
        "tracker:reopen": Status.CLOSED,
    }.get(name)
    if state:
        Recommendation.objects.filter(pk=rec.pk).update(status=state)
    if name == "tracker:target-date":
        Recommendation.objects.filter(pk=rec.pk).update(target_date=TARGET_BEFORE)
    rec.refresh_from_db()


def _assert_done(name: str, rec: Recommendation, by, people: dict) -> None:
    """What each allowed post must have stored, and recorded on the timeline as done by ``by``."""
    Status, Event = Recommendation.Status, RecommendationEvent.Action
    rec.refresh_from_db()
    events = RecommendationEvent.objects.filter(recommendation=rec, actor=by)
    if name == "tracker:update":
        update = ProgressUpdate.objects.get(recommendation=rec)
        assert (update.author, update.narrative, update.rag) == (by, "Forged update", "green")
        assert (rec.status, rec.rag) == (Status.IN_PROGRESS, "green")
        assert events.filter(action=Event.UPDATE).exists()
    elif name == "tracker:add-evidence":
        item = Evidence.objects.get(recommendation=rec)
        assert (item.added_by, item.kind, item.category) == (by, "note", "outcome")
        assert (item.description, item.note) == ("Forged", "Forged")
        assert events.filter(action=Event.EVIDENCE_ADDED).exists()
    elif name == "tracker:submit":
        assert rec.status == Status.AWAITING_ASSURANCE
        assert events.filter(action=Event.SUBMITTED).exists()
    elif name == "tracker:decide":
        assert rec.status == Status.IN_PROGRESS
        assert events.filter(action=Event.REJECTED, reason="Forged").exists()
    elif name == "tracker:reopen":
        assert rec.status == Status.IN_PROGRESS
        assert events.filter(action=Event.REOPENED, reason="Forged").exists()
    elif name == "tracker:reassign":
        assert rec.owner == people["otto"]
        assert events.filter(action=Event.OWNER_CHANGED).exists()
    elif name == "tracker:target-date":
        assert rec.target_date == TARGET_AFTER
        assert events.filter(action=Event.TARGET_DATE_CHANGED, reason="Forged").exists()
    else:  # pragma: no cover - a new form needs its effect written here
        raise AssertionError(f"no expected effect written for {name}")


@pytest.fixture
def people(lead, rita, olly, otto, vic, mallory):
    return {"lead": lead, "rita": rita, "olly": olly, "otto": otto, "vic": vic, "mallory": mallory}


def _snapshot(rec: Recommendation) -> tuple:
    rec.refresh_from_db()
    return (
        rec.version,
        rec.status,
        rec.owner_id,
        rec.target_date,
        rec.rag,
        RecommendationEvent.objects.filter(recommendation=rec).count(),
        ProgressUpdate.objects.count(),
        Evidence.objects.count(),
    )


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("persona", ["lead", "rita", "olly", "otto", "vic", "mallory"])
def test_each_role_may_open_only_the_forms_design_allows(client, people, rec, name, persona):
    _prepare(name, rec)
    client.force_login(people[persona])
    response = client.get(reverse(name, args=[rec.pk]))
    assert response.status_code == EXPECTED[PAGES[name]][persona]
    if response.status_code == FORBIDDEN:
        assert b"You cannot do this" in response.content


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("persona", ["lead", "rita", "olly", "otto", "vic", "mallory"])
def test_allowed_posts_do_what_they_say_and_refused_ones_change_nothing(client, people, rec, name, persona):
    _prepare(name, rec)
    expected = EXPECTED[PAGES[name]][persona]
    before = _snapshot(rec)
    client.force_login(people[persona])
    response = client.post(reverse(name, args=[rec.pk]), {**_post_data(name, people), "version": rec.version})
    if expected == OK:
        # Done, and back on the recommendation's page: not a form redisplayed with an error.
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] == reverse("tracker:recommendation", args=[rec.pk])
        _assert_done(name, rec, people[persona], people)
        assert rec.version == before[0] + 1
    else:
        assert response.status_code == expected
        assert _snapshot(rec) == before


def test_a_forged_recommendation_id_in_a_form_post_is_refused_and_changes_nothing(
    client, people, olly, otto, org, other_org
):
    ottos = RecommendationFactory(finding__inspection__organisation=org, owner=otto)
    foreign = RecommendationFactory(finding__inspection__organisation=other_org)
    client.force_login(olly)
    for target in (ottos, foreign):
        before = _snapshot(target)
        for name in FORMS:
            response = client.post(
                reverse(name, args=[target.pk]), {**_post_data(name, people), "version": target.version}
            )
            assert response.status_code == 404, name
        assert _snapshot(target) == before


def test_a_forged_evidence_id_from_another_recommendation_is_not_found(client, rita, olly, otto, org, rec):
    elsewhere = RecommendationFactory(finding__inspection__organisation=org, owner=otto)
    foreign_item = EvidenceFactory(recommendation=elsewhere)
    client.force_login(rita)
    response = client.post(
        reverse("tracker:review-evidence", args=[rec.pk, foreign_item.pk]),
        {"decision": "accept", "version": rec.version},
    )
    assert response.status_code == 404
    foreign_item.refresh_from_db()
    assert foreign_item.verdict == Evidence.Verdict.PENDING


@pytest.mark.parametrize(
    ("persona", "status"),
    [("lead", 302), ("rita", 302), ("olly", 403), ("otto", 404), ("vic", 403), ("mallory", 404)],
)
def test_evidence_verdicts_follow_the_role_rules(client, people, rec, persona, status):
    item = EvidenceFactory(recommendation=rec)
    client.force_login(people[persona])
    response = client.post(
        reverse("tracker:review-evidence", args=[rec.pk, item.pk]), {"decision": "accept", "version": rec.version}
    )
    assert response.status_code == status
    item.refresh_from_db()
    assert item.verdict == (Evidence.Verdict.ACCEPTED if status == 302 else Evidence.Verdict.PENDING)


def test_inspection_of_another_organisation_is_not_found(client, mallory, rec):
    client.force_login(mallory)
    assert client.get(reverse("tracker:inspection", args=[rec.finding.inspection_id])).status_code == 404


@pytest.fixture
def file_evidence(rec, olly, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.web.conftest import PDF_BYTES

    upload = check_upload(SimpleUploadedFile("plan.pdf", PDF_BYTES, content_type="application/pdf"))
    return workflow.add_evidence(rec, by=olly, kind="file", category="output", description="Plan", upload=upload)


@pytest.mark.parametrize(
    ("persona", "status"),
    [("lead", 200), ("rita", 200), ("olly", 200), ("vic", 200), ("otto", 404), ("mallory", 404)],
)
def test_evidence_download_is_permission_checked_and_logged(client, people, file_evidence, persona, status):
    from tests.web.conftest import PDF_BYTES

    client.force_login(people[persona])
    response = client.get(reverse("tracker:evidence-download", args=[file_evidence.pk]))
    assert response.status_code == status
    logs = AccessLog.objects.filter(action=AccessLog.Action.EVIDENCE_DOWNLOAD)
    if status == 200:
        assert b"".join(response.streaming_content) == PDF_BYTES
        assert response["Content-Disposition"] == 'attachment; filename="plan.pdf"'
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response["Cache-Control"].split(", ")
        log = logs.get()
        assert log.user == people[persona]
        assert log.detail == {
            "evidence": file_evidence.pk,
            "recommendation": file_evidence.recommendation_id,
            "filename": "plan.pdf",
        }
    else:
        assert not logs.exists()


def test_evidence_files_are_stored_under_generated_names_outside_static_and_media(file_evidence, settings):
    from pathlib import Path

    stored = Path(settings.EVIDENCE_ROOT) / file_evidence.file.name
    assert stored.is_file()
    assert "plan" not in file_evidence.file.name
    assert not str(stored).startswith(str(settings.STATIC_ROOT))
    with pytest.raises(ValueError, match="no public URL"):
        file_evidence.file.url  # noqa: B018
