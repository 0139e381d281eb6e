"""The GOV.UK date input as a form post: three boxes named ``<prefix>-day``, ``-month`` and ``-year``.

Kept in one place so that tests posting dates to the staff pages change in one line if the widget does.
"""

from __future__ import annotations

import datetime as dt


def date_post_data(prefix: str, date: dt.date | tuple[str, str, str] | None) -> dict[str, str]:
    """A date as typed: a real date, or (day, month, year) exactly as a person might type it, or empty."""
    if date is None:
        day = month = year = ""
    elif isinstance(date, dt.date):
        day, month, year = str(date.day), str(date.month), str(date.year)
    else:
        day, month, year = date
    return {f"{prefix}-day": day, f"{prefix}-month": month, f"{prefix}-year": year}


def target_date_post_data(date: dt.date | tuple[str, str, str] | None, reason: str = "") -> dict[str, str]:
    """The target-date page's post for changing (or setting) the date."""
    return {"choice": "change", **date_post_data("target_date", date), "reason": reason}
