"""Keyset ("cursor") pagination, shared by the staff list, the home page and the API.

A page is the rows after (or before) the last row seen, in an order that ends with the id, so every
page costs the same however deep it is: the database seeks to the cursor in an index
(``Recommendation.Meta.indexes``) instead of counting past every earlier row, and nobody counts the
whole list to draw page numbers. A cursor is the ordering values of that boundary row, in base64 JSON;
it names no row the caller could not already see, because it only ever narrows their own queryset.

NULL sorts after every value in both databases (SQLite and PostgreSQL disagree by default), so a
nullable key such as the target date reads the same everywhere.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import reduce
from operator import and_, or_
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q, QuerySet


class InvalidCursor(ValueError):
    """The cursor was not made by this module for this ordering."""


@dataclass(frozen=True)
class Key:
    path: str  # a lookup path such as "next_review_due" or "owner__last_name"
    attrs: tuple[str, ...]  # how to read it from a row: ("owner", "last_name"), or ("owner_id",)
    descending: bool
    field: models.Field
    nullable: bool
    # The nullable relation it is read through ("owner"), when that is the only reason it may be NULL.
    through: str | None = None

    def order_by(self) -> models.OrderBy:
        expression = F(self.path)
        if self.descending:
            return expression.desc(nulls_first=True) if self.nullable else expression.desc()
        return expression.asc(nulls_last=True) if self.nullable else expression.asc()

    def reversed(self) -> Key:
        return replace(self, descending=not self.descending)


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def keys(model: type[models.Model], ordering: Sequence[str]) -> list[Key]:
    """The ordering as keys, with the id appended (in the direction of the last key) when missing."""
    terms = [term for term in ordering if term]
    paths = {term.lstrip("-") for term in terms}
    if not paths & {"pk", "id"}:
        terms.append("-pk" if terms and terms[-1].startswith("-") else "pk")
    result = []
    for term in terms:
        path = term.lstrip("-")
        current, field, attrs, nulls = model, None, [], []
        for part in path.split("__"):
            field = current._meta.pk if part == "pk" else current._meta.get_field(part)
            if field.null:
                nulls.append("__".join([*path.split("__")[: len(attrs)], part]))
            attrs.append(field.attname if part != "pk" else "pk")
            if field.is_relation:
                attrs[-1] = part
                current = field.related_model
        if field.is_relation:  # "owner" means the owner's id, read without loading the owner
            attrs[-1] = field.attname
            field = field.target_field
        through = nulls[0] if len(nulls) == 1 and nulls[0] != path and "__" in path else None
        result.append(Key(path, tuple(attrs), term.startswith("-"), field, bool(nulls), through))
    return result


def paginate(
    queryset: QuerySet,
    ordering: Sequence[str],
    cursor: str | None,
    size: int,
    *,
    two_steps: bool = True,
    rows_from: QuerySet | None = None,
    ids: Sequence[Any] | None = None,
) -> Page:
    """One page of ``queryset`` in ``ordering`` (plus the id), after or before ``cursor``.

    In two steps by default: the ids of the page from the bare filtered query (so that an order no
    index serves sorts ids, and nothing joined or annotated is computed for rows that are not shown),
    then those rows with everything the queryset selects and annotates. One step (one query) suits a
    small queryset whose order an index serves.

    ``rows_from``, in two steps: read the page's rows (by id) from this queryset, which must hold every row
    of ``queryset`` with the same selections, instead of from ``queryset`` again: what a filter costs (a
    search's index) is then paid once, for the ids, not again for the rows.

    ``ids``, for a first page (no cursor) in two steps: the ids of ``queryset`` in ``ordering`` as the
    caller already read them (at least ``size + 1``, or all there are), so that they are not read again.
    """
    order = keys(queryset.model, ordering)
    backwards, boundary = _decode(cursor, order) if cursor else (False, None)
    walk = [key.reversed() for key in order] if backwards else order
    if two_steps:
        if ids is None or cursor:
            ids = _ids(queryset, walk, boundary, size + 1)
        ids = list(ids[: size + 1])
        more, ids = len(ids) > size, ids[:size]
        source = queryset if rows_from is None else rows_from
        by_id = {row.pk: row for row in source.order_by().filter(pk__in=ids)} if ids else {}
        rows = [by_id[pk] for pk in ids if pk in by_id]
    else:
        rows = list(_ordered(queryset, walk, boundary)[: size + 1])
        more, rows = len(rows) > size, rows[:size]
    if backwards:
        rows.reverse()
    if not rows:
        return Page(rows, None, None)
    has_next = (boundary is not None) if backwards else more
    has_previous = more if backwards else boundary is not None
    return Page(
        rows,
        _encode(False, _values(rows[-1], order)) if has_next else None,
        _encode(True, _values(rows[0], order)) if has_previous else None,
    )


def _ordered(queryset: QuerySet, walk: Sequence[Key], boundary: Sequence[Any] | None) -> QuerySet:
    ordered = queryset.order_by(*(key.order_by() for key in walk))
    return ordered if boundary is None else ordered.filter(_after(walk, boundary))


def _ids(queryset: QuerySet, walk: Sequence[Key], boundary: Sequence[Any] | None, limit: int) -> list[Any]:
    """Up to ``limit`` ids after ``boundary`` in ``walk``.

    An order led by a column of a nullable relation (the owner's name) is read in two parts, the rows with
    one and the rows without, each in an order an index serves: with one, an inner join, so that the
    database can walk the related rows in their index order and each one's rows in theirs (a left join
    must start from every row, and sorted all 50,000 by the owner's name); without one, the remaining
    keys alone. NULL sorts last, so the rows without come after (or walking back, before) the others.
    """
    through = walk[0].through
    if through is None:
        return list(_ordered(queryset, walk, boundary).values_list("pk", flat=True)[:limit])
    # Within each part no key read through the relation is NULL; ``_after`` may then seek on the first.
    present = [replace(key, nullable=False) if key.through == through else key for key in walk]
    absent = [key for key in walk if key.through != through]
    parts = [
        _ordered(queryset.filter(**{f"{walk[0].path}__isnull": False}), present, boundary),
        queryset.filter(**{f"{through}__isnull": True}).order_by(*(key.order_by() for key in absent)),
    ]
    if boundary is not None:
        parts[1] = parts[1].filter(_after(walk, boundary))
    if walk[0].descending:
        parts.reverse()
    # Both parts are always read (each stops at the limit), so that every page costs the same queries.
    ids = []
    for part in parts:
        ids += part.values_list("pk", flat=True)[:limit]
    return ids[:limit]


def in_order(queryset: QuerySet, ordering: Sequence[str]) -> QuerySet:
    """``queryset`` in ``ordering`` plus the id, as a first page of ``paginate`` reads it."""
    return queryset.order_by(*(key.order_by() for key in keys(queryset.model, ordering)))


def _after(order: Sequence[Key], boundary: Sequence[Any]) -> Q:
    """Rows strictly after ``boundary`` in ``order``: (k1 > b1) or (k1 = b1 and k2 > b2) or ..."""
    nothing = Q(pk__in=[])
    branches = []
    for i, key in enumerate(order):
        equal_before = [_equal(k, b) for k, b in zip(order[:i], boundary[:i], strict=True)]
        beyond = _beyond(key, boundary[i])
        if beyond is not None:
            branches.append(reduce(and_, [*equal_before, beyond]))
    condition = reduce(or_, branches) if branches else nothing
    first, value = order[0], boundary[0]
    if not first.nullable and value is not None:
        # Redundant with the branches, but a plain range on the leading key lets the index seek to it.
        condition &= Q(**{f"{first.path}__{'lte' if first.descending else 'gte'}": value})
    return condition


def _equal(key: Key, value: Any) -> Q:
    return Q(**{f"{key.path}__isnull": True}) if value is None else Q(**{key.path: value})


def _beyond(key: Key, value: Any) -> Q | None:
    # NULL is the largest value: nothing is beyond it ascending; everything non-null is, descending.
    if value is None:
        return None if not key.descending else Q(**{f"{key.path}__isnull": False})
    if key.descending:
        return Q(**{f"{key.path}__lt": value})
    beyond = Q(**{f"{key.path}__gt": value})
    return beyond | Q(**{f"{key.path}__isnull": True}) if key.nullable else beyond


def _values(row: Any, order: Sequence[Key]) -> list[Any]:
    values = []
    for key in order:
        value = row
        for attr in key.attrs:
            if value is None:
                break
            value = getattr(value, attr)
        values.append(value)
    return values


def _encode(backwards: bool, values: Sequence[Any]) -> str:
    plain = [value.isoformat() if isinstance(value, dt.date | dt.datetime) else value for value in values]
    raw = json.dumps({"b": backwards, "v": plain}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, order: Sequence[Key]) -> tuple[bool, list[Any]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        backwards, plain = data["b"], data["v"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidCursor(cursor) from None
    if not isinstance(backwards, bool) or not isinstance(plain, list) or len(plain) != len(order):
        raise InvalidCursor(cursor)
    values = []
    for key, value in zip(order, plain, strict=True):
        if value is None:
            if not key.nullable:
                raise InvalidCursor(cursor)
            values.append(None)
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidCursor(cursor)
        try:
            value = key.field.to_python(value)
        except (ValidationError, TypeError, ValueError, OverflowError):
            raise InvalidCursor(cursor) from None
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # no 64-bit column holds it
            raise InvalidCursor(cursor)
        values.append(value)
    return backwards, values
