"""The table rows' own date and link writing (tracker_tags): the same text as Django's date filter and
reverse(), which they replace for speed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.template.defaultfilters import date
from django.test import override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix

from tracker.templatetags import tracker_tags


@pytest.mark.parametrize("year", [2025, 2026, 999])
def test_a_rows_dates_read_as_the_date_filter_writes_them(year):
    days = [dt.date(year, month, day) for month in range(1, 13) for day in (1, 9, 28)]
    for day in days:
        assert tracker_tags._day(day) == date(day, tracker_tags._DAY)
    assert tracker_tags._day(None) == date(None, tracker_tags._DAY) == ""


@override_settings(TIME_ZONE="Europe/London")
def test_a_date_and_time_is_first_turned_into_local_time_as_a_template_does():
    late = dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)  # 1 July in London
    assert tracker_tags._day(late) == Template('{{ at|date:"j M Y" }}').render(Context({"at": late})) == "1 Jul 2026"


@pytest.mark.parametrize("prefix", ["/", "/tracker/", "/987/"])
def test_a_rows_link_is_what_reverse_gives(prefix):
    set_script_prefix(prefix)
    try:
        url = tracker_tags._recommendation_urls()
        for pk in (1, 7, 987654321, 12345678901):
            assert url(pk) == reverse("tracker:recommendation", args=[pk])
    finally:
        clear_script_prefix()
