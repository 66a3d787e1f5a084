"""Tests that run the real Pulumi CLI (`make engine` builds it; `make test` builds it first).

Each test gets its own project copy, state directory and generated passphrase: nothing touches the
checkout's stack files or the operator's state. Without the pinned CLI these tests fail (they are
not skipped): run `make engine`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_workspace import Workspace, open_workspace

from ght_socle.engine import Engine, find_engine
from ght_socle.engine.scratch import copy_program
from ght_socle.engine.versions import PULUMI_VERSION


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = find_engine()
    assert found is not None, f"no pulumi v{PULUMI_VERSION}: run `make engine`"
    return found


@pytest.fixture
def workspace(tmp_path: Path, engine: Engine) -> Workspace:
    root = tmp_path / "project"
    copy_program(root)
    return open_workspace(root, tmp_path / "state", engine)
