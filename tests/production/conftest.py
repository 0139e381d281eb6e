"""Production concerns: deploy settings, sign-in throttling, sessions, deactivation, audit, scale-out.

The scale-out tests reuse the real Redis, Celery and SMTP fixtures of the reminder tests; under
``make test-postgres`` their worker processes share a PostgreSQL database with the test.
"""

import pytest
from django.core.management import call_command

from tests.reminders.conftest import (  # noqa: F401 (fixtures reused)
    broker,
    migrated_template,
    redis,
    redis_url,
    services,
    smtp,
    worker_db,
)
from tests.web.conftest import browser_type_launch_args  # noqa: F401 (Debian's Chromium)


@pytest.fixture
def role_permissions(db):
    """The role groups with their real model permissions (fixtures/groups.json), as the admin needs them."""
    call_command("loaddata", "groups", verbosity=0)
