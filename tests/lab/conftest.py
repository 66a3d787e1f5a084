"""The session lab: real QEMU VMs of the ``lab`` stack, booted once for every test under tests/lab.

Use the ``lab`` fixture (session scope) in any ``tests/lab/test_*.py``::

    def test_auditd_runs(lab):
        result = lab.run("app-01", "systemctl is-active auditd", sudo=True)
        assert result.stdout.strip() == "active"

``lab`` is a :class:`Lab`:

* ``lab.inventory``: the inventory directory (``hosts.yml``, ``ssh_config``, ``known_hosts``), e.g. for
  ``socle harden --inventory`` / ``socle conform --inventory``;
* ``lab.hosts``: every VM name; ``lab.groups``: inventory group -> VM names (``lab.group("dpi_app")``);
  ``lab.bastion``: the bastion's name; ``lab.addresses``: VM -> {zone: address};
* ``lab.run(host, command, sudo=False, timeout=300)``: runs a shell command on ``host`` over the real
  ssh_config (ProxyJump through the bastion, host keys checked) and returns the
  ``subprocess.CompletedProcess`` (text); it never raises on a non-zero exit status.

A session boots the CI fleet (``CI_FLEET``: one host of each kind; ``SOCLE_LAB_HOSTS=all`` for the whole
stack). A lab that is already up (``socle lab up`` before pytest) is reused (VMs not running are restarted)
and left running. A lab this session booted is taken down at the end, and the session then asserts
that no QEMU process of the lab is left; set ``SOCLE_LAB_KEEP=1`` to keep it for the next run.
Every test here is marked ``lab``.
"""


from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import CI_FLEET, Lab, lab_from_status, lab_is_running, leftover_qemu, socle

from ght_socle.lab import manager


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    state_dir = manager.lab_state_dir()
    # A lab that exists (even with a crashed VM) belongs to whoever started it: `up` restarts what is
    # not running, and the session leaves that lab up at the end.
    existed = (state_dir / manager.STATE_FILE).exists()
    if not (existed and lab_is_running()):
        fleet = os.environ.get("SOCLE_LAB_HOSTS", CI_FLEET)
        up = socle("lab", "up", *([] if fleet == "all" else ["--hosts", fleet]))
        if up.returncode != 0:
            raise AssertionError(f"socle lab up failed ({up.returncode}):\n{up.stderr[-3000:]}")
    handle = lab_from_status(state_dir, booted_here=not existed)
    yield handle
    if handle.booted_here and os.environ.get("SOCLE_LAB_KEEP") != "1":
        down = socle("lab", "down")
        assert down.returncode == 0, down.stderr
        assert leftover_qemu(state_dir) == [], "QEMU processes of the lab left after socle lab down"
