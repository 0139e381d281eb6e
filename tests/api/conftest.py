"""API fixtures: a token-authenticated client per persona, and a recommendation in a known state."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import EvidenceFactory, RecommendationFactory
from tracker import workflow
from tracker.models import Evidence, Recommendation, Reminder


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Hundreds of tests each create the personas; real password hashing would dominate their time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for():
    """An API client that signs in the way an integration would: with a token."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def lead_api(client_for, lead):
    return client_for(lead)


def set_state(rec: Recommendation, status: str, **fields) -> Recommendation:
    """Put a recommendation in a state directly: these tests are about the API, not how it got there."""
    Recommendation.objects.filter(pk=rec.pk).update(status=status, **fields)
    rec.refresh_from_db()
    return rec


@pytest.fixture
def in_progress(rec, olly):
    """olly's recommendation, in progress, with one pending note of evidence and one progress update."""
    workflow.post_update(rec, by=olly, narrative="Started the audit.")
    EvidenceFactory(recommendation=rec, added_by=olly)
    rec.refresh_from_db()
    return rec


@pytest.fixture
def awaiting_assurance(in_progress, lead):
    """Submitted, with its evidence accepted by someone other than the owner."""
    Evidence.objects.filter(recommendation=in_progress).update(
        verdict=Evidence.Verdict.ACCEPTED, reviewed_by=lead, reviewed_at=timezone.now()
    )
    return set_state(in_progress, Recommendation.Status.AWAITING_ASSURANCE)


@pytest.fixture
def reminder(rec, olly):
    return Reminder.objects.create(
        recommendation=rec, recipient=olly, stage=Reminder.Stage.DUE_SOON, review_due=timezone.localdate()
    )


@pytest.fixture
def sibling(org, olly):
    """Another of olly's recommendations in the same organisation."""
    return RecommendationFactory(
        finding__inspection__organisation=org,
        owner=olly,
        next_review_due=timezone.localdate() + dt.timedelta(days=3),
    )
