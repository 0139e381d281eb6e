"""Sign-in throttling (django-axes) through the real sign-in page, counted by username and address together."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tracker.accounts import client_ip
from tracker.permissions import Role

PASSWORD = "correct horse battery staple"  # the factories' password


@pytest.fixture
def alice(org):
    return UserFactory(username="alice", organisation=org, roles=[Role.OWNER])


@pytest.fixture
def bob(org):
    return UserFactory(username="bob", organisation=org, roles=[Role.OWNER])


def sign_in(client, username: str, password: str, address: str):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in_as(client) -> str | None:
    response = client.get(reverse("tracker:home"))
    return response.wsgi_request.user.username if response.status_code == 200 else None


def lock_out(client, username: str, address: str) -> None:
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = sign_in(client, username, "not the password", address)
        assert refused.status_code == 200, f"locked out early, at failure {attempt + 1}"
        assert b"govuk-error-summary" in refused.content
    last = sign_in(client, username, "not the password", address)
    assert last.status_code == 429


def test_after_the_limit_even_the_right_password_is_refused_with_a_lockout_message(client, alice):
    lock_out(client, "alice", "10.0.0.1")

    response = sign_in(client, "alice", PASSWORD, "10.0.0.1")

    assert response.status_code == 429
    assert b"Sign-in locked for now" in response.content
    assert b"even with the right password" in response.content
    assert signed_in_as(client) is None


def test_below_the_limit_the_right_password_still_works(client, alice):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "alice", "not the password", "10.0.0.1")

    response = sign_in(client, "alice", PASSWORD, "10.0.0.1")

    assert response.status_code == 302
    assert signed_in_as(client) == "alice"


def test_another_user_at_the_same_office_address_is_not_locked_out(client, alice, bob):
    lock_out(client, "alice", "10.0.0.1")

    response = sign_in(client, "bob", PASSWORD, "10.0.0.1")

    assert response.status_code == 302
    assert signed_in_as(client) == "bob"


def test_the_same_user_from_another_address_is_not_locked_out(client, alice):
    # The lockout is for the pair (username, address): someone guessing alice's password from
    # one place does not stop alice signing in from hers.
    lock_out(client, "alice", "10.0.0.1")

    response = sign_in(client, "alice", PASSWORD, "10.0.0.2")

    assert response.status_code == 302
    assert signed_in_as(client) == "alice"
    assert sign_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 429  # still locked there


def test_the_admin_sign_in_is_throttled_too(client, lead):
    lock_out_url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(lock_out_url, {"username": "lead", "password": "not the password"}, REMOTE_ADDR="10.0.0.1")

    response = client.post(lock_out_url, {"username": "lead", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 429
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}, "10.0.0.1"),  # no proxy: header ignored
        (1, {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 10.0.0.1"}, "10.0.0.1"),  # forged left part
        (2, {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": "10.0.0.1, 10.8.8.8"}, "10.0.0.1"),
        (1, {"REMOTE_ADDR": "10.9.9.9"}, "10.9.9.9"),  # no header at all: the connection's address
    ],
)
def test_the_client_address_comes_from_the_trusted_proxies_only(rf, settings, proxies, meta, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/")
    request.META.update(meta)

    assert client_ip(request) == expected


def test_a_governance_lead_unlocks_a_locked_out_user_from_the_users_page(client, role_permissions, lead, alice):
    lock_out(client, "alice", "10.0.0.1")
    admin = Client()
    admin.force_login(lead)

    response = admin.post(
        reverse("admin:tracker_user_changelist"), {"action": "unlock_sign_in", "_selected_action": [alice.pk]}
    )

    assert response.status_code == 302
    assert sign_in(client, "alice", PASSWORD, "10.0.0.1").status_code == 302
    assert signed_in_as(client) == "alice"
