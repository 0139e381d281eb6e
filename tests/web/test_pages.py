"""The staff pages through Django's test client: what each page shows and what each form does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.factories import EvidenceFactory, FindingFactory, RecommendationFactory, ThemeFactory
from tests.web.dates import target_date_post_data
from tracker import workflow
from tracker.models import Evidence, Finding, Judgement, ProgressUpdate, Recommendation

pytestmark = pytest.mark.django_db

STAFF_URLS = [
    ("tracker:home", False),
    ("tracker:recommendations", False),
    ("tracker:inspection", "inspection"),
    ("tracker:recommendation", "rec"),
    ("tracker:update", "rec"),
    ("tracker:add-evidence", "rec"),
    ("tracker:submit", "rec"),
    ("tracker:decide", "rec"),
    ("tracker:reopen", "rec"),
    ("tracker:reassign", "rec"),
    ("tracker:target-date", "rec"),
]


@pytest.mark.parametrize(("name", "arg"), STAFF_URLS)
def test_every_staff_page_sends_anonymous_visitors_to_sign_in(client, overdue_rec, name, arg):
    args = {"inspection": [overdue_rec.finding.inspection_id], "rec": [overdue_rec.pk]}.get(arg, [])
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_download_and_evidence_review_also_need_sign_in(client, overdue_rec):
    item = EvidenceFactory(recommendation=overdue_rec)
    for url in (
        reverse("tracker:evidence-download", args=[item.pk]),
        reverse("tracker:review-evidence", args=[overdue_rec.pk, item.pk]),
    ):
        assert client.get(url)["Location"].startswith(reverse("login"))


def test_sign_in_and_out(client, olly):
    page = client.get(reverse("login"))
    assert b'<label class="govuk-label" for="id_username">' in page.content
    refused = client.post(reverse("login"), {"username": "olly", "password": "wrong"})
    assert refused.status_code == 200
    assert b"govuk-error-summary" in refused.content
    signed_in = client.post(reverse("login"), {"username": "olly", "password": "correct horse battery staple"})
    assert signed_in["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


def test_password_reset_by_email_sets_a_new_password(client, olly):
    client.post(reverse("password_reset"), {"email": "olly@example.org"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1]
    form = client.get(path, follow=True)
    assert b"Set a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a new long passphrase 42", "new_password2": "a new long passphrase 42"},
    )
    assert done["Location"] == reverse("password_reset_complete")
    # Through the sign-in page: django-axes needs the request that Client.login() does not pass.
    signed_in = client.post(reverse("login"), {"username": "olly", "password": "a new long passphrase 42"})
    assert signed_in["Location"] == "/"


def test_password_reset_for_unknown_address_sends_nothing_but_looks_the_same(client, olly):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_home_lists_my_recommendations_overdue_first_then_due_soon(
    client, olly, otto, later_rec, soon_rec, overdue_rec
):
    others = RecommendationFactory(finding__inspection=overdue_rec.finding.inspection, owner=otto)
    client.force_login(olly)
    html = client.get("/").content.decode()
    overdue, soon, later = (html.index(r.title) for r in (overdue_rec, soon_rec, later_rec))
    assert overdue < soon < later
    assert html.index('id="group-overdue"') < overdue < html.index('id="group-due_soon"') < soon
    assert others.title not in html
    assert overdue_rec.next_review_due.strftime("%-d %b %Y") in html


def test_list_page_filters_searches_sorts_and_counts(client, rita, inspection, olly, otto):
    theme = ThemeFactory(slug="missing-children", name="Missing children")
    missing = RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="CC1", title="Missing children response"),
        owner=olly,
        rag="red",
        next_review_due=timezone.localdate() - dt.timedelta(days=1),
    )
    missing.finding.themes.add(theme)
    RecommendationFactory(
        finding=FindingFactory(inspection=inspection, reference="AFI1", title="Supervision records"), owner=otto
    )
    client.force_login(rita)

    everything = client.get(reverse("tracker:recommendations")).content.decode()
    assert "2 recommendations" in everything
    for query in (
        "theme=missing-children",
        "rag=red",
        "overdue=true",
        f"owner={olly.pk}",
        "q=CC1",
        "status=not_started&q=missing",
    ):
        html = client.get(f"{reverse('tracker:recommendations')}?{query}").content.decode()
        assert "1 recommendation<" in html, query
        assert "Missing children response" in html and "Supervision records" not in html, query
    by_title = client.get(f"{reverse('tracker:recommendations')}?sort=title").content.decode()
    assert by_title.index("Missing children response") < by_title.index("Supervision records")
    by_reference = client.get(f"{reverse('tracker:recommendations')}?sort=reference").content.decode()
    assert by_reference.index("AFI1: ") < by_reference.index("CC1: ")


def test_list_page_paginates_by_next_and_previous_links(client, rita, inspection):
    RecommendationFactory.create_batch(55, finding__inspection=inspection)
    client.force_login(rita)
    first = client.get(reverse("tracker:recommendations")).content.decode()
    assert "55 recommendations" in first
    assert first.count('class="govuk-table__row"') == 51  # header + 50
    assert 'rel="prev"' not in first
    second = client.get(reverse("tracker:recommendations") + _link(first, "next")).content.decode()
    assert second.count('class="govuk-table__row"') == 6
    assert 'rel="next"' not in second
    back = client.get(reverse("tracker:recommendations") + _link(second, "prev")).content.decode()
    assert _rows(back) == _rows(first)


def _link(html: str, rel: str) -> str:
    import html as html_lib
    import re

    return html_lib.unescape(re.search(rf'href="([^"]+)" rel="{rel}"', html).group(1))


def _rows(html: str) -> list[str]:
    import re

    return re.findall(r'href="(/recommendations/\d+/)"', html)


def test_owners_open_the_list_with_only_their_own_recommendations(client, olly, overdue_rec, otto):
    theirs = RecommendationFactory(finding__inspection=overdue_rec.finding.inspection, owner=otto)
    client.force_login(olly)
    html = client.get(reverse("tracker:recommendations")).content.decode()
    assert '<h1 class="govuk-heading-l">Your recommendations' in html
    assert overdue_rec.get_absolute_url() in html and theirs.get_absolute_url() not in html
    # Nobody else's name is a choice: an owner's list has no owner filter.
    assert 'name="owner"' not in html and 'name="owner_name"' not in html
    # A shared link that names another owner lists nothing of theirs, and does not show their name.
    named = client.get(reverse("tracker:recommendations") + f"?owner={otto.pk}").content.decode()
    assert theirs.get_absolute_url() not in named and str(otto) not in named


def test_inspection_page_shows_judgements_and_findings_grouped_by_kind(client, rita, inspection, overdue_rec):
    Judgement.objects.create(inspection=inspection, area="Overall effectiveness", grade="inadequate")
    FindingFactory(inspection=inspection, reference="R1", kind=Finding.Kind.RECOMMENDATION, title="Audit cases")
    client.force_login(rita)
    html = client.get(inspection.get_absolute_url()).content.decode()
    assert "Overall effectiveness" in html and "Inadequate" in html
    assert html.index("Recommendation (1)") < html.index("Audit cases")
    assert html.index("Concern or observation (1)") < html.index(overdue_rec.finding.title)
    assert f'href="{overdue_rec.get_absolute_url()}"' in html


def test_inspection_page_links_an_owner_only_to_what_they_own(client, otto, inspection, overdue_rec):
    client.force_login(otto)
    html = client.get(inspection.get_absolute_url()).content.decode()
    assert overdue_rec.finding.title in html
    assert overdue_rec.get_absolute_url() not in html


def test_recommendation_page_shows_quote_provenance_and_timeline(client, olly, overdue_rec):
    workflow.post_update(overdue_rec, by=olly, narrative="Audit of 40 missing episodes started", rag="amber")
    client.force_login(olly)
    html = client.get(overdue_rec.get_absolute_url()).content.decode()
    finding = overdue_rec.finding
    assert f"“{finding.quote}”" in html
    assert f"Source: {finding.source_title}, {finding.source_location}" in html
    assert "Audit of 40 missing episodes started" in html
    for event in ("Work started", "Progress update", "RAG changed"):
        assert f"<strong>{event}</strong>" in html
    assert overdue_rec.outcome_measure in html


def test_recommendation_page_offers_only_the_actions_this_user_may_take(client, olly, rita, lead, vic, overdue_rec):
    workflow.post_update(overdue_rec, by=olly, narrative="Started")
    links = {
        "update": reverse("tracker:update", args=[overdue_rec.pk]),
        "evidence": reverse("tracker:add-evidence", args=[overdue_rec.pk]),
        "submit": reverse("tracker:submit", args=[overdue_rec.pk]),
        "decide": reverse("tracker:decide", args=[overdue_rec.pk]),
        "reassign": reverse("tracker:reassign", args=[overdue_rec.pk]),
        "target": reverse("tracker:target-date", args=[overdue_rec.pk]),
    }
    expected = {
        olly: {"update", "evidence"},  # submitting waits for evidence
        rita: set(),  # reviewers decide only once it awaits assurance
        vic: set(),
        lead: {"update", "evidence", "reassign", "target"},
    }
    for user, wanted in expected.items():
        client.force_login(user)
        html = client.get(overdue_rec.get_absolute_url()).content.decode()
        shown = {name for name, url in links.items() if f'href="{url}' in html}
        assert shown == wanted, user.username


def test_progress_update_saves_and_completing_a_review_moves_the_date(client, olly, overdue_rec):
    client.force_login(olly)
    url = reverse("tracker:update", args=[overdue_rec.pk])
    response = client.post(
        url, {"narrative": "Dip sample done", "rag": "green", "review_completed": "on", "version": overdue_rec.version}
    )
    assert response["Location"] == overdue_rec.get_absolute_url()
    overdue_rec.refresh_from_db()
    assert overdue_rec.rag == "green"
    assert overdue_rec.status == Recommendation.Status.IN_PROGRESS
    assert overdue_rec.next_review_due == timezone.localdate() + dt.timedelta(days=overdue_rec.review_interval_days)
    assert "Your update has been saved." in client.get(overdue_rec.get_absolute_url()).content.decode()


def test_errors_appear_beside_the_field_and_in_the_summary(client, olly, overdue_rec):
    client.force_login(olly)
    response = client.post(reverse("tracker:update", args=[overdue_rec.pk]), {"narrative": "", "version": 1})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith("<!DOCTYPE html>") and "<title>Error: Post a progress update" in html
    assert '<a href="#id_narrative">Write what has happened since the last update</a>' in html
    assert '<p id="id_narrative-error" class="govuk-error-message">' in html
    assert 'aria-describedby="id_narrative-error"' in html
    assert ProgressUpdate.objects.count() == 0


def test_a_form_posted_after_the_recommendation_changed_is_refused(client, olly, lead, overdue_rec):
    client.force_login(olly)
    url = reverse("tracker:update", args=[overdue_rec.pk])
    loaded_version = overdue_rec.version
    workflow.change_target_date(overdue_rec, by=lead, target_date=dt.date(2027, 3, 31))  # someone else, meanwhile
    response = client.post(url, {"narrative": "My careful update", "rag": "red", "version": loaded_version})
    html = response.content.decode()
    assert response.status_code == 200
    assert "changed by someone else while you were working on it" in html
    assert "My careful update" in html  # what the user typed is kept
    assert ProgressUpdate.objects.count() == 0
    overdue_rec.refresh_from_db()
    assert overdue_rec.rag == "" and overdue_rec.version == loaded_version + 1
    # The form now carries the version the user can see, so a deliberate resubmission goes through.
    assert f'name="version" value="{overdue_rec.version}"' in html


def test_note_and_link_evidence_then_submit_for_assurance(client, olly, overdue_rec):
    client.force_login(olly)
    workflow.post_update(overdue_rec, by=olly, narrative="Started")
    overdue_rec.refresh_from_db()
    client.post(
        reverse("tracker:add-evidence", args=[overdue_rec.pk]),
        {
            "kind": "note",
            "category": "outcome",
            "description": "Audit",
            "note": "Times fell",
            "version": overdue_rec.version,
        },
    )
    overdue_rec.refresh_from_db()
    client.post(
        reverse("tracker:add-evidence", args=[overdue_rec.pk]),
        {
            "kind": "link",
            "category": "output",
            "description": "Training",
            "link": "https://intranet.example.org/training",
            "version": overdue_rec.version,
        },
    )
    assert sorted(Evidence.objects.values_list("kind", flat=True)) == ["link", "note"]
    overdue_rec.refresh_from_db()
    response = client.post(reverse("tracker:submit", args=[overdue_rec.pk]), {"version": overdue_rec.version})
    assert response.status_code == 302
    overdue_rec.refresh_from_db()
    assert overdue_rec.status == Recommendation.Status.AWAITING_ASSURANCE


def test_submitting_without_evidence_is_refused_with_the_workflow_message(client, olly, overdue_rec):
    workflow.post_update(overdue_rec, by=olly, narrative="Started")
    overdue_rec.refresh_from_db()
    client.force_login(olly)
    response = client.post(reverse("tracker:submit", args=[overdue_rec.pk]), {"version": overdue_rec.version})
    assert "Add at least one piece of evidence before submitting for assurance." in response.content.decode()
    overdue_rec.refresh_from_db()
    assert overdue_rec.status == Recommendation.Status.IN_PROGRESS


def _awaiting_assurance(rec, owner):
    workflow.post_update(rec, by=owner, narrative="Started")
    workflow.add_evidence(rec, by=owner, kind="note", category="outcome", description="Audit", note="Done")
    workflow.submit_for_assurance(rec, by=owner)
    rec.refresh_from_db()
    return rec


def test_reviewer_accepts_evidence_and_closes(client, olly, rita, overdue_rec):
    rec = _awaiting_assurance(overdue_rec, olly)
    item = rec.evidence.get()
    client.force_login(rita)
    response = client.post(
        reverse("tracker:review-evidence", args=[rec.pk, item.pk]), {"decision": "accept", "version": rec.version}
    )
    assert response.status_code == 302
    rec.refresh_from_db()
    client.post(reverse("tracker:decide", args=[rec.pk]), {"decision": "close", "reason": "", "version": rec.version})
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.CLOSED


def test_rejecting_needs_a_reason_shown_beside_the_reason_field(client, olly, rita, overdue_rec):
    rec = _awaiting_assurance(overdue_rec, olly)
    client.force_login(rita)
    html = client.post(
        reverse("tracker:decide", args=[rec.pk]), {"decision": "reject", "reason": " ", "version": rec.version}
    ).content.decode()
    assert '<p id="id_reason-error" class="govuk-error-message">' in html
    assert "Give a reason for rejecting the submission." in html
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.AWAITING_ASSURANCE
    client.post(
        reverse("tracker:decide", args=[rec.pk]), {"decision": "reject", "reason": "No audit", "version": rec.version}
    )
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.IN_PROGRESS


def test_a_verdict_given_on_a_stale_page_is_refused(client, olly, rita, lead, overdue_rec):
    rec = _awaiting_assurance(overdue_rec, olly)
    item = rec.evidence.get()
    loaded = rec.version
    workflow.reject(rec, by=lead, reason="Withdrawn while the reviewer was reading")
    client.force_login(rita)

    html = client.post(
        reverse("tracker:review-evidence", args=[rec.pk, item.pk]), {"decision": "accept", "version": loaded}
    ).content.decode()

    assert "changed by someone else" in html
    item.refresh_from_db()
    assert item.verdict == Evidence.Verdict.PENDING


def test_evidence_rejection_needs_a_reason(client, olly, rita, overdue_rec):
    rec = _awaiting_assurance(overdue_rec, olly)
    item = rec.evidence.get()
    client.force_login(rita)
    url = reverse("tracker:review-evidence", args=[rec.pk, item.pk])
    html = client.post(url, {"decision": "reject", "reason": "", "version": rec.version}).content.decode()
    assert "Give a reason for rejecting evidence." in html
    item.refresh_from_db()
    assert item.verdict == Evidence.Verdict.PENDING
    client.post(url, {"decision": "reject", "reason": "Not an audit", "version": rec.version})
    item.refresh_from_db()
    assert item.verdict == Evidence.Verdict.REJECTED and item.rejection_reason == "Not an audit"


def test_lead_reopens_reassigns_and_moves_the_target_date_with_a_reason(client, lead, olly, otto, rita, overdue_rec):
    rec = _awaiting_assurance(overdue_rec, olly)
    workflow.review_evidence(rec.evidence.get(), by=rita, accept=True)
    workflow.close(rec, by=rita)
    rec.refresh_from_db()
    client.force_login(lead)
    missing_reason = client.post(reverse("tracker:reopen", args=[rec.pk]), {"reason": "", "version": rec.version})
    assert "Give a reason for reopening" in missing_reason.content.decode()
    client.post(reverse("tracker:reopen", args=[rec.pk]), {"reason": "Repeat audit failed", "version": rec.version})
    rec.refresh_from_db()
    assert rec.status == Recommendation.Status.IN_PROGRESS
    client.post(reverse("tracker:reassign", args=[rec.pk]), {"owner": otto.pk, "version": rec.version})
    rec.refresh_from_db()
    assert rec.owner == otto
    url = reverse("tracker:target-date", args=[rec.pk])
    client.post(url, {**target_date_post_data(dt.date(2027, 3, 31)), "version": rec.version})
    rec.refresh_from_db()
    assert rec.target_date == dt.date(2027, 3, 31)
    moved = client.post(url, {**target_date_post_data(dt.date(2027, 6, 30)), "version": rec.version})
    assert "Give a reason for moving the target date." in moved.content.decode()
    client.post(
        url, {**target_date_post_data(dt.date(2027, 6, 30), reason="Partner audit delayed"), "version": rec.version}
    )
    rec.refresh_from_db()
    assert rec.target_date == dt.date(2027, 6, 30)
    timeline = client.get(rec.get_absolute_url()).content.decode()
    assert "Reason: Partner audit delayed" in timeline and "Reason: Repeat audit failed" in timeline


def test_four_eyes_a_lead_who_owns_it_cannot_close_it(client, lead, overdue_rec):
    workflow.assign_owner(overdue_rec, by=lead, owner=lead)
    rec = _awaiting_assurance(overdue_rec, lead)
    client.force_login(lead)
    item = rec.evidence.get()
    html = client.post(
        reverse("tracker:review-evidence", args=[rec.pk, item.pk]), {"decision": "accept", "version": rec.version}
    ).content.decode()
    assert "four eyes" in html
    item.refresh_from_db()
    assert item.verdict == Evidence.Verdict.PENDING


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("tracker:update", Recommendation.Status.IN_PROGRESS),
        ("tracker:add-evidence", Recommendation.Status.IN_PROGRESS),
        ("tracker:submit", Recommendation.Status.IN_PROGRESS),
        ("tracker:decide", Recommendation.Status.AWAITING_ASSURANCE),
        ("tracker:reopen", Recommendation.Status.CLOSED),
        ("tracker:reassign", Recommendation.Status.IN_PROGRESS),
        ("tracker:target-date", Recommendation.Status.IN_PROGRESS),
    ],
)
def test_every_workflow_form_carries_the_version_it_was_loaded_at(client, lead, otto, overdue_rec, name, status):
    # Evidence by someone else, so that the lead may both submit and decide.
    EvidenceFactory(recommendation=overdue_rec, category=Evidence.Category.OUTCOME, added_by=otto)
    workflow.change_target_date(overdue_rec, by=lead, target_date=dt.date(2027, 1, 31))  # version 2 now
    Recommendation.objects.filter(pk=overdue_rec.pk).update(status=status)
    client.force_login(lead)
    response = client.get(reverse(name, args=[overdue_rec.pk]))
    assert response.status_code == 200
    assert '<input type="hidden" name="version" value="2"' in response.content.decode()
