"""What the OpenAPI schema says beyond what drf-spectacular infers: the errors and strict request bodies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words a user can act on.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `conflict`, `stale`, `invalid`.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only on 400: the messages for each field, keyed by field name.",
    )


ERRORS = {
    "400": "The request is malformed: a wrong type, a missing or unknown field, or a bad filter or page size.",
    "401": "Not signed in. Send a session cookie or an `Authorization: Token <key>` header.",
    "403": "Signed in, but your role may not do this.",
    "404": "No such object, or not one you may see: another organisation's objects are never shown.",
    "409": "The workflow does not allow this now; `detail` says why and what to do instead.",
    "412": "The recommendation changed since you read it (`version` is out of date). Nothing was saved.",
    "415": "The body is not in a media type this operation accepts (see its request body).",
}


class TrackerAutoSchema(AutoSchema):
    """Adds the error responses each operation can really give, all in the one error shape."""

    def _error_codes(self) -> set[str]:
        codes = {"401"}
        if self._is_list_view():
            codes |= {"400", "404"}  # a bad filter or page size; a page past the end
        if "{" in self.path:
            codes.add("404")  # an object that does not exist or that the user may not see
        if getattr(self.view, "lead_only", False):
            codes.add("403")
        if self.method in ("POST", "PUT", "PATCH"):
            codes |= {"400", "403", "409", "415"}
            request = force_instance(self.get_request_serializer())
            if request is not None and "version" in getattr(request, "fields", {}):
                codes.add("412")
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in sorted(self._error_codes()):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERRORS[code]), code, direction=direction
                )
        return responses


def forbid_unknown_request_fields(result: dict[str, Any], generator, **kwargs) -> dict[str, Any]:
    """Request bodies refuse fields they do not know (see StrictSerializer); say so in the schema."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
