"""Saving and resuming a VM state with the real QEMU the lab uses (no guest boot: a few seconds).

A small QEMU (the lab's accelerator options, a qcow2 disk, a vmgenid device) is stopped before its
first instruction; the lab's save procedure writes its state and copies its disk, then a second QEMU
resumes that state with ``-incoming`` over an overlay backed by the copy. The whole lab does the same
with booted guests (see test_10_lab.py for the fleet resumed end to end).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ght_socle.errors import SocleError
from ght_socle.lab import saved_state, vm


def _qemu(directory: Path, disk: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A running machine with nothing to boot: its firmware keeps the CPU busy looking for a disk."""
    monitor = directory / "qmp.sock"
    argv = [vm.QEMU, "-accel", vm.TCG_OPTIONS, "-machine", "pc", "-m", "64", "-nodefaults", "-display", "none",
            "-device", "vmgenid,guid=auto", "-drive", f"file={disk},if=virtio,format=qcow2",
            "-qmp", f"unix:{monitor},server=on,wait=off", *extra]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not monitor.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"qemu did not start: {process.communicate()[1].decode()}")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOCLE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _save_a_running_machine(directory: Path, key: str, host_keys: list[str]) -> saved_state.SavedFleet:
    """Start a machine with a 16 MiB qcow2 disk in ``directory``, save it as ``vm-a`` under ``key``, stop it."""
    directory.mkdir()
    disk = directory / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
    source = _qemu(directory, disk)
    try:
        saved = saved_state.save(key, [saved_state.VmToSave("vm-a", directory / "qmp.sock", [disk], host_keys)],
                                 progress=lambda _m: None)
        with vm.Qmp(directory / "qmp.sock") as monitor:
            # The source runs on after its state is saved (`cont` after the migration).
            assert monitor.execute("query-status")["status"] == "running"  # type: ignore[index]
    finally:
        _stop(source)
    return saved


def test_a_saved_state_resumes_in_a_new_qemu_over_the_copied_disk(tmp_path: Path, cache: Path) -> None:
    saved = _save_a_running_machine(tmp_path / "first", "k1", ["ssh-ed25519 AAAA"])
    assert saved.vmstate("vm-a").stat().st_size > 0
    assert saved.overlay("vm-a", "root").is_file()
    assert saved_state.find("k1", ["vm-a"]) == saved
    assert saved.host_keys("vm-a") == ["ssh-ed25519 AAAA"]

    second = tmp_path / "second"
    second.mkdir()
    overlay = second / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", saved.overlay("vm-a", "root"), "-F", "qcow2",
                    overlay], check=True)
    resumed = _qemu(second, overlay, "-incoming", f"exec:cat {saved.vmstate('vm-a')}")
    try:
        saved_state.resume(second / "qmp.sock", "vm-a", timeout=60)
        with vm.Qmp(second / "qmp.sock") as monitor:
            assert monitor.execute("query-status")["status"] == "running"  # type: ignore[index]
    finally:
        _stop(resumed)


def test_a_state_for_other_vms_or_an_older_format_is_not_found(tmp_path: Path, cache: Path) -> None:
    _save_a_running_machine(tmp_path / "vm", "k2", [])
    assert saved_state.find("k2", ["vm-a", "vm-b"]) is None  # a VM the state does not hold
    assert saved_state.find("other", ["vm-a"]) is None
    meta = cache / "lab-states" / "k2" / saved_state.META_FILE
    meta.write_text(meta.read_text().replace(f'"format": {saved_state.FORMAT}', '"format": 0'))
    assert saved_state.find("k2", ["vm-a"]) is None


def test_saving_a_vm_whose_monitor_is_gone_is_a_clear_error_and_leaves_nothing(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(SocleError, match="cannot reach the QEMU monitor"):
        saved_state.save("k3", [saved_state.VmToSave("vm-a", tmp_path / "absent.sock", [], [])],
                         progress=lambda _m: None)
    assert not (cache / "lab-states" / "k3").exists()
    assert list((cache / "lab-states").iterdir()) == []


def test_a_damaged_state_does_not_resume(tmp_path: Path) -> None:
    disk = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
    damaged = tmp_path / "vmstate"
    damaged.write_bytes(b"QEVM" + bytes(64))
    process = _qemu(tmp_path, disk, "-incoming", f"exec:cat {damaged}")
    try:
        with pytest.raises(SocleError, match=r"did not resume|cannot reach|closed"):
            saved_state.resume(tmp_path / "qmp.sock", "vm-a", timeout=30)
    finally:
        _stop(process)
