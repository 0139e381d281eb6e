"""Naming a person (a new owner, an action's owner, a measure's supplier, a bulk owner): a list while the
organisation's eligible people are few, a box for a username, email address or full name when they are
many, so that no page lists thousands of people. Either way only an eligible person is accepted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tracker import forms as staff_forms
from tracker.permissions import Role


@pytest.fixture
def many(monkeypatch):
    """An organisation with more eligible people than a list shows (the limit made small: the lead and one
    owner are already more)."""
    monkeypatch.setattr(staff_forms, "PEOPLE_LISTED", 1)


def _reassign(client, rec, owner: str, typed: bool = True):
    """Post the owner form as its box sends it (the typed marker), or as its list does (an id)."""
    data = {"owner": owner, "version": rec.version, **({"owner-typed": "1"} if typed else {})}
    return client.post(reverse("tracker:reassign", args=[rec.pk]), data)


def test_a_few_people_are_a_list_and_many_are_a_box_that_does_not_grow(client, lead, olly, otto, rec, monkeypatch):
    client.force_login(lead)
    url = reverse("tracker:reassign", args=[rec.pk])
    listed = client.get(url).content.decode()
    assert f'<option value="{otto.pk}">' in listed and 'type="text" name="owner"' not in listed

    monkeypatch.setattr(staff_forms, "PEOPLE_LISTED", 2)
    boxed = client.get(url).content
    assert b"<option" not in boxed and f'name="owner" value="{olly.username}"'.encode() in boxed
    assert b"Type their username, email address or full name." in boxed
    assert b'<input type="hidden" name="owner-typed" value="1">' in boxed  # read back as typed, never as an id
    UserFactory.create_batch(20, organisation=lead.organisation, roles=[Role.OWNER])
    assert len(client.get(url).content) == len(boxed)


@pytest.mark.parametrize("typed", ["username", "email", "name"])
def test_a_person_is_found_by_username_email_or_full_name_in_any_case(client, lead, otto, rec, many, typed):
    client.force_login(lead)
    value = {"username": otto.username, "email": otto.email, "name": f"{otto.first_name} {otto.last_name}"}[typed]

    response = _reassign(client, rec, f"  {value.upper()} ")

    assert response.status_code == 302
    rec.refresh_from_db()
    assert rec.owner == otto


@pytest.mark.parametrize("who", ["viewer", "elsewhere", "inactive", "nobody"])
def test_only_an_eligible_person_of_the_organisation_is_found(client, lead, olly, vic, mallory, rec, many, who):
    gone = UserFactory(username="gone", organisation=lead.organisation, roles=[Role.OWNER], is_active=False)
    typed = {"viewer": vic.username, "elsewhere": mallory.username, "inactive": gone.username, "nobody": "zz"}[who]
    client.force_login(lead)

    response = _reassign(client, rec, typed)

    assert response.status_code == 200
    assert "No active owner or governance lead of this organisation has that username" in response.content.decode()
    assert f'value="{typed}"' in response.content.decode()  # what was typed is kept, to correct
    rec.refresh_from_db()
    assert rec.owner == olly


def test_a_name_two_people_share_is_refused_with_what_to_type_instead(client, lead, olly, rec, many):
    for username in ("sam1", "sam2"):
        UserFactory(username=username, first_name="Sam", last_name="Smith", organisation=lead.organisation,
                    roles=[Role.OWNER])  # fmt: skip
    client.force_login(lead)

    response = _reassign(client, rec, "Sam Smith")

    assert "More than one person has that name: enter their username or email address" in response.content.decode()
    rec.refresh_from_db()
    assert rec.owner == olly
    assert _reassign(client, rec, "sam2").status_code == 302


def test_an_action_owner_is_typed_too(client, lead, otto, rec, many):
    client.force_login(lead)
    form = client.get(reverse("tracker:plan-add", args=[rec.pk])).content.decode()
    assert '<input type="text" name="owner"' in form

    response = client.post(
        reverse("tracker:plan-add", args=[rec.pk]),
        {
            "description": "Audit the missing-children episodes",
            "owner": otto.email,
            "owner-typed": "1",
            "due_date-day": "30",
            "due_date-month": "6",
            "due_date-year": "2027",
        },
    )

    assert response.status_code == 302
    assert rec.plan_actions.get().owner == otto


def test_a_username_of_digits_is_a_username_when_typed_and_an_id_is_an_id_when_listed(client, lead, olly, otto, rec):
    """A collar number as a username must never be read as somebody else's id, nor an id as a username."""
    numbered = UserFactory(username=str(otto.pk), organisation=lead.organisation, roles=[Role.OWNER])
    client.force_login(lead)

    assert _reassign(client, rec, str(otto.pk), typed=False).status_code == 302  # the list posts otto's id
    rec.refresh_from_db()
    assert rec.owner == otto
    assert _reassign(client, rec, str(otto.pk)).status_code == 302  # typed: the username that is those digits
    rec.refresh_from_db()
    assert rec.owner == numbered


def test_usernames_differing_only_in_case_are_told_apart_when_typed_exactly(client, lead, olly, rec, many):
    bob = UserFactory(username="Bob", organisation=lead.organisation, roles=[Role.OWNER])
    UserFactory(username="bob", organisation=lead.organisation, roles=[Role.OWNER])
    client.force_login(lead)

    assert _reassign(client, rec, "Bob").status_code == 302
    rec.refresh_from_db()
    assert rec.owner == bob
    assert "More than one person" in _reassign(client, rec, "BOB").content.decode()
