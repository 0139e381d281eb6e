"""The API's JSON parser, with a bound on nesting: at most MAX_JSON_DEPTH levels.

DRF's own parser lets Python's recursion limit decide, which is a 500. (The size of a body is bounded
before any parser runs: DRF reads JSON through ``request.body``, which refuses more than
DATA_UPLOAD_MAX_MEMORY_SIZE; tracker.api.exceptions turns that into a 413.)
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No request body of this API needs more than three levels; 32 leaves room and stops abuse.
MAX_JSON_DEPTH = 32


def _too_deep(data: Any) -> bool:
    # Iterative, so a hostile body cannot make the check itself recurse.
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        too_deep = ParseError(f"JSON parse error - the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if _too_deep(data):
            raise too_deep
        return data
