"""The cause-of-concern rule shows before it bites: what submitting and closing need, on the pages, from
the very conditions the guards refuse with (``policy.submit_conditions`` and ``policy.close_conditions``).

The walk below does the real workflow call in every state for every persona and checks that it succeeds
exactly when the checklist is all ticked, and that a refusal is the first unticked item's reason.
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils.html import escape

from tests.factories import RecommendationFactory
from tests.one_rule import MEASURE, build_states, last_periods, submitted
from tracker import policy, workflow
from tracker.models import Evidence, Finding, Recommendation
from tracker.permissions import Action, NotPermitted

pytestmark = pytest.mark.django_db

Category = Evidence.Category


def _evidence(rec, by, category=Category.OUTCOME, description="Audit"):
    return workflow.add_evidence(rec, by=by, kind="note", category=category, description=description, note="20 cases")


def _more_states(org, olly, rita, lead) -> dict[str, Recommendation]:
    """The states the closing conditions tell apart beyond ``build_states``."""

    def cause_of_concern():
        return RecommendationFactory(
            finding__inspection__organisation=org, finding__kind=Finding.Kind.CAUSE_OF_CONCERN, owner=olly
        )

    recs = {}
    rec = cause_of_concern()
    workflow.post_update(rec, by=olly, narrative="Started.")
    output = _evidence(rec, olly, Category.OUTPUT, "Training delivered")
    outcome = _evidence(rec, olly, Category.OUTCOME, "Response times audited")
    workflow.submit_for_assurance(rec, by=olly)
    workflow.review_evidence(output, by=rita, accept=True)
    workflow.review_evidence(outcome, by=rita, accept=False, reason="The sample is two cases")
    # Its measure is at target (issue 16), so outcome evidence is the one thing closing still needs.
    measure = workflow.add_measure(rec, by=olly, supplier=olly, **MEASURE)
    for period, value in zip(last_periods(3), (90, 92, 95), strict=True):
        workflow.enter_measure_data(measure, by=olly, period=period, value=value)
    recs["awaiting, cause of concern, only the output accepted"] = rec

    rec = submitted(RecommendationFactory(finding__inspection__organisation=org, owner=olly), olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=False, reason="Names a child")
    recs["awaiting, all evidence rejected"] = rec

    rec = RecommendationFactory(finding__inspection__organisation=org, owner=olly)
    workflow.post_update(rec, by=olly, narrative="Started.")
    _evidence(rec, lead, description="The lead's own audit")
    workflow.submit_for_assurance(rec, by=olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    recs["awaiting, accepted, the lead added evidence"] = rec

    rec = cause_of_concern()
    workflow.post_update(rec, by=olly, narrative="Started.")
    _evidence(rec, olly, Category.OUTPUT)
    _evidence(rec, olly, Category.OUTCOME)
    workflow.submit_for_assurance(rec, by=olly)
    recs["awaiting, cause of concern, both pending"] = rec

    rec = cause_of_concern()
    workflow.post_update(rec, by=olly, narrative="Started.")
    _evidence(rec, olly, Category.OUTCOME)
    recs["in progress, cause of concern, outcome evidence"] = rec

    rec = submitted(RecommendationFactory(finding__inspection__organisation=org, owner=olly), olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    _evidence(rec, olly, description="A later audit")
    recs["awaiting, one accepted, one pending"] = rec
    return recs


@pytest.fixture
def states(org, olly, rita, lead, vic):
    recs = build_states(org, olly, rita)
    recs.update(_more_states(org, olly, rita, lead))
    return recs


def _fresh(rec: Recommendation) -> Recommendation:
    return Recommendation.objects.with_related().get(pk=rec.pk)


def _attempt(call) -> str | None:
    """Do the real workflow call, then undo it: None if it worked, else the refusal's message."""
    with transaction.atomic():
        try:
            call()
        except (workflow.WorkflowError, NotPermitted) as exc:
            return str(exc)
        finally:
            transaction.set_rollback(True)
    return None


def _agrees(user, rec, checklist, action, call) -> None:
    decision = policy.decide(user, rec, action)
    refusal = _attempt(call)
    if decision.by_role:
        assert refusal == decision.reason  # the checklist does not speak for the role half
        return
    unmet = [item for item in checklist if not item.met]
    assert (refusal is None) == (not unmet), (rec, user, refusal, unmet)
    if unmet:
        assert refusal == unmet[0].reason
        assert decision.reason == unmet[0].reason


@pytest.mark.parametrize("persona", ["olly", "rita", "lead", "vic"])
def test_the_closing_checklist_is_all_ticked_exactly_when_closing_works(states, request, persona):
    user = request.getfixturevalue(persona)
    for name, rec in states.items():
        checklist = policy.closing_checklist(user, _fresh(rec))
        if not policy.decide(user, _fresh(rec), Action.CLOSE).by_role:
            assert all(item.met is not None for item in checklist), name
        _agrees(user, _fresh(rec), checklist, Action.CLOSE, lambda rec=rec: workflow.close(_fresh(rec), by=user))


@pytest.mark.parametrize("persona", ["olly", "rita", "lead", "vic"])
def test_the_submit_checklist_is_all_ticked_exactly_when_submitting_works(states, request, persona):
    user = request.getfixturevalue(persona)
    for rec in states.values():
        checklist = policy.submit_checklist(user, _fresh(rec))
        call = lambda rec=rec: workflow.submit_for_assurance(_fresh(rec), by=user)  # noqa: E731
        _agrees(user, _fresh(rec), checklist, Action.SUBMIT, call)


def test_the_walk_covers_every_closing_and_submitting_condition(states, rita, lead, olly):
    """Each condition is unmet in some state on its own, so the walk above has seen each rule refuse."""
    alone = set()
    for rec in states.values():
        for user in (rita, lead):
            unmet = [item.key for item in policy.closing_checklist(user, _fresh(rec)) if item.met is False]
            alone |= set(unmet) if len(unmet) == 1 else set()
        unmet = [item.key for item in policy.submit_checklist(olly, _fresh(rec)) if item.met is False]
        alone |= set(unmet) if len(unmet) == 1 else set()
    closing = {"awaiting_assurance", "four_eyes", "reviewed", "accepted", "outcome_accepted", "outcomes"}
    assert alone == closing | {"in_progress", "evidence", "outcome_evidence"}


def test_a_cause_of_concern_lists_outcome_evidence_and_other_findings_do_not(states, rita):
    keys = [item.key for item in policy.closing_checklist(rita, _fresh(states["awaiting, pending"]))]
    assert keys == ["awaiting_assurance", "four_eyes", "reviewed", "accepted"]
    rec = _fresh(states["awaiting, cause of concern, only the output accepted"])
    checklist = {item.key: item for item in policy.closing_checklist(rita, rec)}
    assert [key for key, item in checklist.items() if not item.met] == ["outcome_accepted"]
    assert checklist["accepted"].met is True


def test_four_eyes_is_about_the_person_who_may_close_and_names_who_is_ruled_out(states, lead, olly, vic):
    rec = _fresh(states["awaiting, accepted, the lead added evidence"])
    mine = {item.key: item for item in policy.closing_checklist(lead, rec)}["four_eyes"]
    assert mine.met is False and mine.reason == policy.FOUR_EYES_CLOSE
    for someone in (olly, vic):
        theirs = {item.key: item for item in policy.closing_checklist(someone, rec)}["four_eyes"]
        assert theirs.met is None
        assert str(lead) in theirs.reason and str(olly) in theirs.reason


# The pages.


def _row(html: str, key: str) -> str:
    match = re.search(rf'data-condition="{key}" data-met="(\w+)">(.*?)</dd>', html, re.S)
    assert match, f"no checklist row {key}"
    return match.group(1) + " " + match.group(2)


def test_the_recommendation_page_shows_the_closing_checklist_with_fixes(client, states, olly, rita):
    rec = states["awaiting, cause of concern, only the output accepted"]
    client.force_login(olly)
    html = client.get(rec.get_absolute_url()).content.decode()
    assert "What closing needs" in html
    assert _row(html, "reviewed").startswith("yes ")
    outcome = _row(html, "outcome_accepted")
    assert outcome.startswith("no ")
    assert escape("A cause of concern can only be closed with accepted evidence of an outcome for children.") in outcome
    add_outcome = reverse("tracker:add-evidence", args=[rec.pk]) + "?category=outcome"
    assert f'href="{add_outcome}"' in outcome
    four_eyes = _row(html, "four_eyes")
    assert four_eyes.startswith("later ") and escape(str(olly)) in four_eyes
    # The reviewer may not add evidence: the same row, no link.
    client.force_login(rita)
    assert "href" not in _row(client.get(rec.get_absolute_url()).content.decode(), "outcome_accepted")


def test_the_checklist_names_each_rejected_item_and_links_to_add_new_evidence(client, states, olly):
    rec = states["awaiting, all evidence rejected"]
    client.force_login(olly)
    accepted = _row(client.get(rec.get_absolute_url()).content.decode(), "accepted")
    assert escape("Evidence “Audit” was rejected: Names a child") in accepted
    assert f'href="{reverse("tracker:add-evidence", args=[rec.pk])}">Add new evidence' in accepted


def test_a_closed_recommendation_has_no_checklist(client, states, olly):
    client.force_login(olly)
    assert "What closing needs" not in client.get(states["closed"].get_absolute_url()).content.decode()


def test_an_owner_sees_what_submitting_still_needs_on_the_recommendation_page(client, states, olly):
    rec = states["in progress, output only, cause of concern"]
    client.force_login(olly)
    submitted_row = _row(client.get(rec.get_absolute_url()).content.decode(), "awaiting_assurance")
    assert escape("A cause of concern needs evidence of an outcome for children") in submitted_row
    assert "?category=outcome" in submitted_row


def test_the_submit_page_names_what_is_missing_with_links_to_fix_it(client, states, olly):
    rec = states["in progress, output only, cause of concern"]
    client.force_login(olly)
    response = client.get(reverse("tracker:submit", args=[rec.pk]))
    assert response.status_code == 409
    html = response.content.decode()
    assert "What submitting needs" in html
    assert _row(html, "in_progress").startswith("yes ") and _row(html, "evidence").startswith("yes ")
    row = _row(html, "outcome_evidence")
    assert row.startswith("no ") and ">Add outcome evidence</a>" in row
    # Without any evidence, and with evidence only rejected.
    rec = states["in progress, no evidence"]
    html = client.get(reverse("tracker:submit", args=[rec.pk])).content.decode()
    assert ">Add a piece of evidence</a>" in _row(html, "evidence")
    rec = states["not started"]
    html = client.get(reverse("tracker:submit", args=[rec.pk])).content.decode()
    assert ">Start the work with a progress update</a>" in _row(html, "in_progress")


def test_a_rejected_item_is_named_on_the_submit_page(client, states, olly, rita):
    rec = states["awaiting, all evidence rejected"]
    workflow.reject(rec, by=rita, reason="More work needed")
    client.force_login(olly)
    html = client.get(reverse("tracker:submit", args=[rec.pk])).content.decode()
    row = _row(html, "evidence")
    assert escape("Evidence “Audit” was rejected: Names a child") in row and "Add new evidence" in row


def test_the_submit_page_shows_the_checklist_ticked_when_it_may_be_submitted(client, states, olly):
    rec = states["in progress, cause of concern, outcome evidence"]
    client.force_login(olly)
    response = client.get(reverse("tracker:submit", args=[rec.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-met="no"' not in html and html.count('data-met="yes"') == 3


def test_the_outcome_link_chooses_outcome_on_the_evidence_form(client, states, olly):
    rec = states["in progress, output only, cause of concern"]
    client.force_login(olly)
    html = client.get(reverse("tracker:add-evidence", args=[rec.pk]) + "?category=outcome").content.decode()
    assert re.search(r'value="outcome"\s+checked', html)
    html = client.get(reverse("tracker:add-evidence", args=[rec.pk]) + "?category=nonsense").content.decode()
    assert "checked" not in html


def test_the_decision_page_names_the_evidence_awaiting_a_verdict_with_a_link_to_each(client, states, rita, lead):
    rec = states["awaiting, cause of concern, both pending"]
    client.force_login(rita)
    html = client.get(reverse("tracker:decide", args=[rec.pk])).content.decode()
    row = _row(html, "reviewed")
    assert row.startswith("no ") and "2 evidence item(s) still await a verdict" in row
    for item in rec.evidence.all():
        assert f'href="{reverse("tracker:review-evidence", args=[rec.pk, item.pk])}">Give it a verdict' in row
        assert escape(f"Evidence “{item.description}” awaits your verdict.") in row
    # Someone ruled out by four eyes is told who must give the verdicts, without links.
    rec = states["awaiting, accepted, the lead added evidence"]
    workflow.add_evidence(rec, by=rec.owner, kind="note", category="output", description="More", note="Yes")
    client.force_login(lead)
    html = client.get(reverse("tracker:decide", args=[rec.pk])).content.decode()
    assert _row(html, "four_eyes").startswith("no ")
    row = _row(html, "reviewed")
    assert "review/" not in row and escape("Evidence “More” awaits a verdict from an assurance reviewer.") in row


def test_the_decision_page_refused_still_shows_what_closing_needs(client, states, rita):
    client.force_login(rita)
    response = client.get(reverse("tracker:decide", args=[states["in progress, no evidence"].pk]))
    assert response.status_code == 409
    assert _row(response.content.decode(), "awaiting_assurance").startswith("no ")


# The evidence form: each kind's field under its own radio.


def test_each_kind_reveals_its_own_field_and_all_show_without_javascript(client, rec, olly):
    workflow.post_update(rec, by=olly, narrative="Started")
    client.force_login(olly)
    html = client.get(reverse("tracker:add-evidence", args=[rec.pk])).content.decode()
    for index, (kind, field) in enumerate((("file", "id_file"), ("link", "id_link"), ("note", "id_note"))):
        conditional = f"conditional-id_kind-{kind}"
        radio = f'id="id_kind_{index}" name="kind" type="radio" value="{kind}" data-tracker-reveal="{conditional}"'
        assert radio in html
        block = re.search(rf'<div class="([^"]*)" id="{conditional}">(.*?)</div>\s*</div>', html, re.S)
        # Shown as sent: only the script hides the kinds not chosen.
        assert block.group(1) == "govuk-radios__conditional"
        assert f'id="{field}"' in block.group(2)
    assert "tracker/evidence-form.js" in html


def test_the_chosen_kind_stays_open_and_a_field_with_an_error_always_shows(client, rec, olly):
    workflow.post_update(rec, by=olly, narrative="Started")
    client.force_login(olly)
    url = reverse("tracker:add-evidence", args=[rec.pk])
    data = {"kind": "link", "category": "output", "description": "Report", "version": rec.version}
    response = client.post(url, {**data, "note": "not a link"})
    html = response.content.decode()
    assert "Enter the web address of the evidence" in html  # the server's check, as before
    # The chosen kind's field has the error: it is out of the script's reach, so it always shows.
    assert re.search(r'value="link"\s+checked>', html)
    assert 'value="note" data-tracker-reveal="conditional-id_kind-note"' in html
    assert rec.evidence.count() == 0
    # The error summary lists errors in the page's order: the kind's own field before the description.
    response = client.post(url, {"kind": "note", "version": rec.version})
    summary = re.search(r'govuk-error-summary__list">(.*?)</ul>', response.content.decode(), re.S).group(1)
    assert summary.index("Write the note") < summary.index("Describe what this evidence shows")


def test_a_file_refused_while_another_kind_is_chosen_still_shows_its_error(client, rec, olly):
    """A file left in the hidden file box is still checked by the server; its error must not be hidden."""
    from tests.web.conftest import PDF_BYTES
    from tests.web.test_uploads_and_escaping import _raw_multipart

    workflow.post_update(rec, by=olly, narrative="Started")
    client.force_login(olly)
    fields = {"kind": "link", "category": "output", "description": "Report", "link": "https://example.org/r"}
    response = _raw_multipart(
        client,
        reverse("tracker:add-evidence", args=[rec.pk]),
        {**fields, "version": rec.version},
        "../x.pdf",
        PDF_BYTES,
    )
    html = response.content.decode()
    assert "The file name must be a plain name without folders" in html
    # Not under the script's control, so it is never hidden.
    assert 'value="file">' in html and 'data-tracker-reveal="conditional-id_kind-file"' not in html
    assert rec.evidence.count() == 0
