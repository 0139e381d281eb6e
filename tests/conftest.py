"""Shared fixtures: one organisation with the four personas, and an outsider from another force.

Personas: lead (governance lead), rita (assurance reviewer), olly (owner), otto (another owner),
vic (viewer), and mallory (a governance lead in another organisation).
"""

import pytest
from django.core.cache import cache

from tests.factories import OrganisationFactory, RecommendationFactory, UserFactory
from tracker.permissions import Role


@pytest.fixture(autouse=True)
def _private_dirs(settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Fast hashing: the suite creates many users; production keeps Django's default hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Throttle counters (password reset) live in the cache: each test starts with none.
    cache.clear()


@pytest.fixture
def org(db):
    return OrganisationFactory(slug="cleveland", name="Cleveland Police")


@pytest.fixture
def other_org(db):
    return OrganisationFactory(slug="elsewhere", name="Elsewhere Constabulary")


@pytest.fixture
def lead(org):
    return UserFactory(username="lead", organisation=org, roles=[Role.GOVERNANCE_LEAD], is_staff=True)


@pytest.fixture
def rita(org):
    return UserFactory(username="rita", organisation=org, roles=[Role.REVIEWER])


@pytest.fixture
def olly(org):
    return UserFactory(username="olly", organisation=org, roles=[Role.OWNER])


@pytest.fixture
def otto(org):
    return UserFactory(username="otto", organisation=org, roles=[Role.OWNER])


@pytest.fixture
def vic(org):
    return UserFactory(username="vic", organisation=org, roles=[Role.VIEWER], is_staff=True)


@pytest.fixture
def mallory(other_org):
    return UserFactory(username="mallory", organisation=other_org, roles=[Role.GOVERNANCE_LEAD], is_staff=True)


@pytest.fixture
def rec(org, olly):
    """A recommendation owned by olly, in olly's organisation."""
    return RecommendationFactory(finding__inspection__organisation=org, owner=olly)
