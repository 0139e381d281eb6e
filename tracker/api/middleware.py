"""Every answer of the API, errors and Django's own included, tells caches and browsers not to store it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

# Where config/urls.py mounts tracker.api.urls.
API_PREFIX = "/api/"


def no_store(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if request.path_info.startswith(API_PREFIX):
            # API bodies carry safeguarding data and per-user answers: never keep them in a shared cache.
            add_never_cache_headers(response)
        return response

    return middleware
