"""Pagination for the API: a page size the client may choose up to a maximum; recommendations by cursor."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from tracker import keyset


class BoundedPageSize:
    """A page size beyond the maximum is refused with a 400, not silently capped: the client learns the limit."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"Choose a page size from 1 to {self.max_page_size}."]})
        return int(raw)

    def page_size_parameter(self) -> dict[str, Any]:
        return {
            "name": self.page_size_query_param,
            "required": False,
            "in": "query",
            "description": "Number of results to return per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
        }


class Pagination(BoundedPageSize, PageNumberPagination):
    """Page numbers, for the short lists (inspections, findings, updates, evidence, reminders)."""

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
        return parameters


class CursorPagination(BoundedPageSize, BasePagination):
    """Next and previous links by cursor (``tracker.keyset``): page 1,000 costs what page 1 costs.

    The order is the list's ``ordering`` (the ordering filter's choice or the view's default) with the
    id appended as the tiebreak; a cursor belongs to that order. There is no total count: counting
    every visible row on every page is what made deep pages slow.
    """

    cursor_query_param = "cursor"
    invalid_cursor_message = "This cursor is not valid for this list and ordering: follow `next` or `previous`."

    def paginate_queryset(self, queryset, request, view=None) -> list[Any]:
        self.request = request
        size = self.get_page_size(request)
        ordering = [term for term in queryset.query.order_by if isinstance(term, str)] or ["pk"]
        try:
            self.page = keyset.paginate(queryset, ordering, request.query_params.get(self.cursor_query_param), size)
        except keyset.InvalidCursor:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
        return self.page.rows

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), "page")
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {**link, "description": "The next page, or null on the last."},
                "previous": {**link, "description": "The previous page, or null on the first."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: take it from the `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            self.page_size_parameter(),
        ]
