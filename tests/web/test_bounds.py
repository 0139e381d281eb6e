"""The staff pages refuse filters they do not understand, with a message, rather than listing everything."""

import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("overdue=maybe", "Choose true or false"),
        ("status=bogus", "Choose from: not_started"),
        ("rag=purple", "Choose from: red, amber, green"),
        ("due_before=someday", "Enter a valid date"),
    ],
)
def test_an_invalid_filter_is_shown_as_an_error_and_lists_nothing(client, rita, overdue_rec, later_rec, query, message):
    client.force_login(rita)

    response = client.get(f"{reverse('tracker:recommendations')}?{query}")

    assert response.status_code == 200
    page = response.content.decode()
    assert "govuk-error-summary" in page
    assert message in page
    assert overdue_rec.title not in page
    assert later_rec.title not in page


def test_a_valid_filter_still_lists_what_it_matches(client, rita, overdue_rec, later_rec):
    client.force_login(rita)

    page = client.get(f"{reverse('tracker:recommendations')}?overdue=true").content.decode()

    assert "govuk-error-summary" not in page
    assert overdue_rec.title in page
    assert later_rec.title not in page


@pytest.mark.parametrize("value", ["²", "١", "99999999999999999999999", "-1", "abc"])
def test_a_malformed_dashboard_inspection_is_not_found_not_a_500(client, rita, value):
    client.force_login(rita)

    response = client.get(reverse("tracker:dashboard"), {"inspection": value})

    assert response.status_code == 404


def test_the_export_refuses_overdue_maybe_like_the_list(client, rita, overdue_rec):
    client.force_login(rita)

    response = client.get(reverse("tracker:export-csv"), {"overdue": "maybe"})

    assert response.status_code == 400
    assert b"overdue" in response.content
