"""The refusals that every interface turns into a message: the pages as a form error, the API as 4xx."""

from __future__ import annotations


class WorkflowError(Exception):
    """An action that is not allowed now. The message tells the user what to do instead."""


class InvalidInput(WorkflowError):
    """The request itself is incomplete or malformed (a missing reason, an empty narrative)."""


class StaleRecommendation(WorkflowError):
    """The recommendation changed after the user loaded it."""
