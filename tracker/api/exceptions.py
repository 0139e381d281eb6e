"""Domain errors as HTTP answers, and one error body for every failure.

Every error the API returns has the same shape, ``{"detail": ..., "code": ..., "errors": {...}}``,
so a client needs one parser and the schema can describe it once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from tracker.permissions import NotPermitted
from tracker.uploads import UploadRejected
from tracker.workflow import InvalidInput, StaleRecommendation, WorkflowError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This action is not possible in the recommendation's current state."
    default_code = "conflict"


class InvalidRequest(exceptions.APIException):
    """The workflow found the request incomplete (a missing reason, an empty narrative)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request is incomplete."
    default_code = "invalid"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The recommendation changed after you loaded it."
    default_code = "stale"


def _translate(exc: Exception) -> Exception:
    # StaleRecommendation is a WorkflowError, so it must be tested first.
    if isinstance(exc, StaleRecommendation):
        return PreconditionFailed(str(exc))
    if isinstance(exc, InvalidInput):
        return InvalidRequest(str(exc))
    if isinstance(exc, WorkflowError):
        return Conflict(str(exc))
    if isinstance(exc, NotPermitted):
        # DRF would swap our message for a generic one; keep the words the user can act on.
        return exceptions.PermissionDenied(str(exc))
    if isinstance(exc, UploadRejected):
        return exceptions.ValidationError({"file": [str(exc)]})
    # Django refuses a body (JSON, or a form's fields) over DATA_UPLOAD_MAX_MEMORY_SIZE, and too many
    # fields or files, with these; unhandled they would be an HTML error page.
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"The request body must be at most {limit} bytes (uploaded files apart).")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ParseError(str(exc) or "The request has too many fields or files.")
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def _messages(value: Any) -> list[str]:
    """Flatten DRF's nested error details into plain sentences."""
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, inner in value.items() for message in _messages(inner)]
    if isinstance(value, list | tuple):
        return [message for item in value for message in _messages(item)]
    return [str(value)]


def exception_handler(exc: Exception, context: dict) -> Any:
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        errors = {str(field): _messages(problems) for field, problems in detail.items()}
        summary = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        response.data = {"detail": f"Invalid input. {summary}", "code": "invalid", "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "detail": " ".join(_messages(exc.detail)),
            "code": codes if isinstance(codes, str) else exc.default_code,
        }
    return response
