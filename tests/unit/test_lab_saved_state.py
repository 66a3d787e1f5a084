"""The key of a saved lab state and the cache that holds them (no VM needed)."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ght_socle.errors import SocleError
from ght_socle.lab import saved_state
from ght_socle.lab.vm import VmSpec


def _spec(directory: Path, **changes: object) -> VmSpec:
    spec = VmSpec(name="app-01", directory=directory, accelerator="tcg", memory_mb=1024, vcpus=1,
                  kernel=Path("/cache/images/abc/vmlinuz"), initrd=Path("/cache/images/abc/initrd.img"),
                  disks=[directory / "root.qcow2", directory / "var.qcow2"], seed=directory / "seed.iso",
                  zone_nics=[(7, "52:54:00:6c:01:00")], nat_mac="52:54:00:6c:01:ff", ssh_forward_port=None)
    return replace(spec, **changes)


def test_the_guest_signature_ignores_what_only_one_run_has() -> None:
    one = _spec(Path("/checkout-a/.socle/lab/vms/app-01"))
    other = _spec(Path("/tmp/b/state/lab/vms/app-01"), zone_nics=[(12, "52:54:00:6c:01:00")], ssh_forward_port=2222,
                  incoming=Path("/cache/lab-states/x/app-01/vmstate"),
                  kernel=Path("/other-cache/images/abc/vmlinuz"), initrd=Path("/other-cache/images/abc/initrd.img"))
    assert one.guest_signature() == other.guest_signature()
    assert "-incoming" in other.argv() and "-incoming" not in other.guest_signature()


@pytest.mark.parametrize("change", [{"memory_mb": 2048}, {"vcpus": 2}, {"accelerator": "kvm"},
                                    {"nat_mac": "52:54:00:6c:02:ff"}, {"zone_nics": [(7, "52:54:00:6c:01:01")]},
                                    {"kernel": Path("/cache/images/def/vmlinuz")}])
def test_the_guest_signature_changes_with_what_the_guest_sees(change: dict[str, object]) -> None:
    directory = Path("/lab/vms/app-01")
    assert _spec(directory).guest_signature() != _spec(directory, **change).guest_signature()


def test_the_key_changes_with_the_seed_and_is_stable_otherwise() -> None:
    signature = {"image": "abc", "qemu": "7.2", "vms": {"app-01": {"machine": ["x"], "seed": {"user-data": "a"}}}}
    assert saved_state.digest(signature) == saved_state.digest(json.loads(json.dumps(signature)))
    changed = {**signature, "vms": {"app-01": {"machine": ["x"], "seed": {"user-data": "b"}}}}
    assert saved_state.digest(signature) != saved_state.digest(changed)


def test_prune_keeps_the_most_recently_used_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLE_CACHE", str(tmp_path))
    root = saved_state.root()
    for age, key in enumerate(["newest", "middle", "older", "oldest"]):
        (root / key / "vm").mkdir(parents=True)
        (root / key / "vm" / "vmstate").write_bytes(b"state")
        meta = root / key / saved_state.META_FILE
        meta.write_text(json.dumps({"format": saved_state.FORMAT, "vms": {"vm": {"host_keys": []}}}))
        os.utime(meta, (1_000_000 - age * 100, 1_000_000 - age * 100))
    (root / "incomplete").mkdir()  # no saved.json: an interrupted save
    assert saved_state.find("oldest", ["vm"]) is not None  # using it makes it the most recent
    saved_state.prune(keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["newest", "oldest"]


def _monitor_that_dies(path: Path, *, reset: bool) -> threading.Thread:
    """A monitor socket whose QEMU exits at once, as one that cannot load its incoming state does."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def accept_and_die() -> None:
        connection, _ = server.accept()
        if reset:  # abortive close: the client's read fails with ECONNRESET instead of an empty stream
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        server.close()

    thread = threading.Thread(target=accept_and_die, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reset", [True, False], ids=["connection-reset", "end-of-stream"])
def test_a_qemu_that_exits_while_resuming_is_named_not_a_crash(tmp_path: Path, reset: bool) -> None:
    monitor = tmp_path / "qmp.sock"
    thread = _monitor_that_dies(monitor, reset=reset)
    with pytest.raises(SocleError) as raised:
        saved_state.resume(monitor, "bastion-01", timeout=5)
    thread.join(timeout=5)
    assert raised.value.message.startswith("bastion-01 did not resume from its saved state")
    assert "closed before its greeting" in raised.value.message
