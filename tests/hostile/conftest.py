"""The hostile tests write into the session's shared database (imports that succeed, fuzzed API
writes, stored payloads): each module puts every business table back as it found it, so that the
tests after it see the seeded data."""
from __future__ import annotations

import pytest

from tests.conftest import tables_kept_by


@pytest.fixture(scope="module", autouse=True)
def tables_kept(app):
    with tables_kept_by(app):
        yield
