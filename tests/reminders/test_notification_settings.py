"""The notification settings page: each person's own choices, by role; leads cannot turn off escalations."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser import serious_axe_violations, sign_in, snap
from tests.factories import UserFactory
from tests.web.conftest import browser_type_launch_args  # noqa: F401 (fixture reused)
from tracker import notifications
from tracker.models import NotificationPreference
from tracker.permissions import Role

Kind = NotificationPreference.Kind
Delivery = NotificationPreference.Delivery
URL = "/settings/notifications/"


def _choices(user) -> dict[str, str]:
    return dict(NotificationPreference.objects.filter(user=user).values_list("kind", "delivery"))


def test_the_page_is_at_its_address_and_in_the_navigation(client, olly):
    client.force_login(olly)

    response = client.get(URL)

    assert reverse("tracker:notification-settings") == URL
    assert response.status_code == 200
    assert f'href="{URL}" aria-current="page">Notifications</a>' in response.content.decode()


def test_each_role_sees_the_kinds_it_receives_with_the_defaults_checked(client, olly, rita, lead, vic):
    shown = {}
    for person in (olly, rita, lead, vic):
        client.force_login(person)
        shown[person.username] = client.get(URL).context["form"].fields
    assert list(shown["olly"]) == [Kind.RETURNED, Kind.OWNERSHIP, Kind.ACCEPTED]
    assert list(shown["rita"]) == [Kind.AWAITING_ASSURANCE]
    assert list(shown["lead"]) == [Kind.RETURNED, Kind.OWNERSHIP, Kind.ACCEPTED, Kind.TARGET_MOVED, Kind.ESCALATIONS]
    assert list(shown["vic"]) == []
    assert shown["olly"][Kind.RETURNED].initial == Delivery.IMMEDIATE
    assert shown["olly"][Kind.OWNERSHIP].initial == Delivery.DAILY


def test_an_owner_saves_a_choice_and_sees_it_again(client, olly):
    client.force_login(olly)

    response = client.post(
        URL, {Kind.RETURNED: Delivery.DAILY, Kind.OWNERSHIP: Delivery.IMMEDIATE, Kind.ACCEPTED: Delivery.DAILY}
    )

    assert response.status_code == 302
    assert _choices(olly) == {
        Kind.RETURNED: Delivery.DAILY,
        Kind.OWNERSHIP: Delivery.IMMEDIATE,
        Kind.ACCEPTED: Delivery.DAILY,
    }
    page = client.get(URL)
    assert page.context["form"][Kind.RETURNED].value() == Delivery.DAILY
    assert "Your notification settings have been saved." in page.content.decode()


def test_the_form_says_leads_cannot_turn_off_escalations_and_the_server_refuses(client, lead):
    client.force_login(lead)
    page = client.get(URL).content.decode()
    assert notifications.LEADS_CANNOT_TURN_OFF in page
    assert 'value="off"' not in page

    response = client.post(
        URL,
        {
            Kind.RETURNED: Delivery.DAILY,
            Kind.OWNERSHIP: Delivery.DAILY,
            Kind.ACCEPTED: Delivery.DAILY,
            Kind.TARGET_MOVED: Delivery.IMMEDIATE,
            Kind.ESCALATIONS: Delivery.OFF,
        },
    )

    assert response.status_code == 400
    assert "There is a problem" in response.content.decode()
    assert notifications.LEADS_CANNOT_TURN_OFF in response.content.decode()
    assert _choices(lead) == {}  # nothing saved, not even the other choices


def test_bad_input_gets_a_message_and_changes_nothing(client, olly):
    client.force_login(olly)

    for bad in ({Kind.RETURNED: "hourly"}, {Kind.RETURNED: Delivery.OFF}, {}):
        response = client.post(URL, {Kind.OWNERSHIP: Delivery.DAILY, Kind.ACCEPTED: Delivery.DAILY, **bad})
        assert response.status_code == 400
        assert "There is a problem" in response.content.decode()
    assert _choices(olly) == {}


def test_a_person_changes_only_their_own_choices_whatever_the_form_says(client, org, olly, otto):
    elsewhere = UserFactory(username="far", roles=[Role.OWNER])
    client.force_login(olly)

    client.post(
        URL,
        {
            Kind.RETURNED: Delivery.DAILY,
            Kind.OWNERSHIP: Delivery.DAILY,
            Kind.ACCEPTED: Delivery.DAILY,
            "user": otto.pk,
            "user_id": elsewhere.pk,
        },
    )

    assert _choices(olly) == {k: Delivery.DAILY for k in (Kind.RETURNED, Kind.OWNERSHIP, Kind.ACCEPTED)}
    assert _choices(otto) == _choices(elsewhere) == {}


def test_signing_in_is_needed(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_settings_page_in_chromium_is_accessible_and_saves(page: Page, live_server, lead):
    sign_in(page, live_server.url, "lead")
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", name="Notification settings", level=1)).to_be_visible()
    snap(page, "notifications-01-settings")
    assert serious_axe_violations(page) == []

    page.get_by_role("group", name=Kind.TARGET_MOVED.label).get_by_label("Within minutes").check()
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_text("Your notification settings have been saved.")).to_be_visible()
    assert serious_axe_violations(page) == []
    assert _choices(lead)[Kind.TARGET_MOVED] == Delivery.IMMEDIATE
