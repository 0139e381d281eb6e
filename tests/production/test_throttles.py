"""Throttles beyond sign-in: guessing the current password on the change form, and password-reset emails."""

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tracker.permissions import Role

PASSWORD = "correct horse battery staple"  # the factories' password
NEW_PASSWORD = "a quite different passphrase 42"


@pytest.fixture
def alice(org):
    return UserFactory(username="alice", email="alice@example.org", organisation=org, roles=[Role.OWNER])


def change_password(client, old: str, address: str = "10.0.0.1"):
    return client.post(
        reverse("password_change"),
        {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        REMOTE_ADDR=address,
    )


def test_wrong_current_passwords_on_the_change_form_lock_out_like_sign_in(client, alice):
    client.force_login(alice)
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = change_password(client, "a guess")
        assert refused.status_code == 200, f"locked out early, at failure {attempt + 1}"
        assert b"govuk-error-summary" in refused.content

    assert change_password(client, "a guess").status_code == 429
    # Even the right current password is now refused, and the password is unchanged.
    assert change_password(client, PASSWORD).status_code == 429
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_change_form_lockout_also_locks_sign_in_from_that_address(client, alice):
    client.force_login(alice)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        change_password(client, "a guess")

    other = Client()
    response = other.post(reverse("login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 429


def test_the_right_current_password_below_the_limit_changes_it(client, alice):
    client.force_login(alice)
    change_password(client, "a guess")

    response = change_password(client, PASSWORD)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def request_reset(client, email: str, address: str = "10.0.0.2"):
    return client.post(reverse("password_reset"), {"email": email}, REMOTE_ADDR=address)


def test_reset_emails_to_one_address_stop_at_the_limit_and_the_page_looks_the_same(client, alice):
    answers = [request_reset(client, "alice@example.org", f"10.0.1.{n}") for n in range(6)]

    assert len(mail.outbox) == settings.PASSWORD_RESET_EMAILS_PER_HOUR
    assert {(answer.status_code, answer["Location"]) for answer in answers} == {(302, reverse("password_reset_done"))}


def test_the_address_limit_is_case_insensitive(client, alice):
    for n in range(settings.PASSWORD_RESET_EMAILS_PER_HOUR + 2):
        request_reset(client, "ALICE@example.org" if n % 2 else "alice@example.org", f"10.0.2.{n}")

    assert len(mail.outbox) == settings.PASSWORD_RESET_EMAILS_PER_HOUR


def test_one_client_address_is_limited_across_many_email_addresses(client, org, settings):
    settings.PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR = 4
    for n in range(8):
        UserFactory(username=f"user{n}", email=f"user{n}@example.org", organisation=org, roles=[Role.OWNER])
        request_reset(client, f"user{n}@example.org", "10.0.3.1")

    assert len(mail.outbox) == 4


def test_unknown_addresses_count_too_so_the_limit_reveals_nothing(client, alice, settings):
    settings.PASSWORD_RESET_REQUESTS_PER_CLIENT_HOUR = 2
    request_reset(client, "nobody@example.org")
    request_reset(client, "nobody2@example.org")

    request_reset(client, "alice@example.org")

    assert len(mail.outbox) == 0


def test_the_limit_lifts_after_an_hour(client, alice):
    with time_machine.travel("2026-03-02 09:00", tick=False) as traveller:
        for n in range(settings.PASSWORD_RESET_EMAILS_PER_HOUR + 1):
            request_reset(client, "alice@example.org", f"10.0.4.{n}")
        assert len(mail.outbox) == settings.PASSWORD_RESET_EMAILS_PER_HOUR

        traveller.shift(61 * 60)
        request_reset(client, "alice@example.org", "10.0.4.99")

    assert len(mail.outbox) == settings.PASSWORD_RESET_EMAILS_PER_HOUR + 1
