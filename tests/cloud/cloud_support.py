"""Support of tests/cloud: the local cloud's control plane, up for each module, always taken down at the end.

``cloud`` (module scope) runs the real ``socle cloud up --control-plane`` (Debian packages, MariaDB,
the OpenStack APIs behind their TLS front on 127.0.0.1): a cloud a previous module left running is
reused (seconds), one a test took down is started again. Whatever happens, ``socle cloud down`` runs
once at the end of the session. Its state stays in ``$SOCLE_STATE/cloud`` (databases, image store),
so a later run skips the schema syncs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ght_socle.cloud.layout import Layout

SOCLE = [sys.executable, "-m", "ght_socle.cli"]
UP_TIMEOUT = 1800.0


def socle(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOCLE, *args], capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Cloud:
    layout: Layout
    first_up: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def cloud_session() -> Iterator[None]:
    """Takes the local cloud down at the end of the session, whatever happened."""
    try:
        yield
    finally:
        down = socle("cloud", "down", timeout=300)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def cloud(cloud_session: None) -> Cloud:
    result = socle("cloud", "up", "--control-plane")
    assert result.returncode == 0, f"cloud up failed:\n{result.stdout}\n{result.stderr}"
    return Cloud(Layout.default(), result)
