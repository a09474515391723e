"""The scenario verifies twice: after the migration ("migrated") and after side_effect rolled it
back and ran the faults ("rolled-back", a marker side_effect writes). Tests of one stage skip in
the other, saying so."""

from __future__ import annotations

import pytest

_MARKER = "/root/.pidock-migrate-stage"


@pytest.fixture(scope="module")
def stage(host) -> str:
    marker = host.file(_MARKER)
    return marker.content_string.strip() if marker.exists else "migrated"


@pytest.fixture
def migrated(stage) -> None:
    if stage != "migrated":
        pytest.skip("checks the migrated stack; the host is rolled back now")


@pytest.fixture
def rolled_back(stage) -> None:
    if stage != "rolled-back":
        pytest.skip("checks the bare metal after rollback; the host is migrated now")
