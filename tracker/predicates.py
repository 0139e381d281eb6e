"""Test one object against a ``Q`` in Python, so that a rule written once as a ``Q`` serves both ways.

A queryset filters by the ``Q``; ``matches`` answers the same question for an instance already in
memory, without a query. Only what the domain's rules use is understood (AND, OR, NOT; ``exact``,
``lt``, ``lte``, ``gt``, ``gte``, ``in``, ``isnull``; forward relations): anything else raises rather
than guess. A missing related object reads as NULL, and a comparison with NULL is false, which is
what Django's SQL does (it adds ``IS NOT NULL`` under a negation so that NOT keeps those rows).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from django.db.models import Manager, Q

_LOOKUPS: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": lambda value, options: value in options,
}


def value_at(obj: object, path: str) -> Any:
    """The value at a ``__`` path of forward relations (``owner__is_active``); None past a missing object."""
    current = obj
    for name in path.split("__"):
        if current is None:
            return None
        current = getattr(current, name)
        if isinstance(current, Manager):
            raise TypeError(f"{path!r} crosses a many-valued relation, which a single value cannot answer")
    return current


def _lookup_matches(obj: object, path: str, wanted: Any) -> bool:
    if hasattr(wanted, "resolve_expression"):
        raise TypeError(f"{path!r}: only literal values can be tested in Python, not {wanted!r}")
    field, _, lookup = path.rpartition("__")
    if lookup != "isnull" and lookup not in _LOOKUPS:
        field, lookup = path, "exact"
    value = value_at(obj, field)
    if lookup == "isnull":
        return (value is None) == bool(wanted)
    if wanted is None and lookup == "exact":  # Django reads field=None as field__isnull=True
        return value is None
    if value is None:
        return False  # NULL compared with anything is not true
    return _LOOKUPS[lookup](value, wanted)


def matches(obj: object, q: Q) -> bool:
    """Would ``obj`` be in ``queryset.filter(q)``?"""
    if q.connector not in (Q.AND, Q.OR):
        raise TypeError(f"unsupported connector {q.connector}")
    results = (matches(obj, child) if isinstance(child, Q) else _lookup_matches(obj, *child) for child in q.children)
    result = all(results) if q.connector == Q.AND else any(results)
    return not result if q.negated else result
