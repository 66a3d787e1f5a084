"""Saved fleet states: a lab of the same plan resumed in seconds instead of booted in minutes.

Under TCG a Debian guest needs three to four minutes from power-on to SSH, and five guests share two
cores: most of it is cloud-init's four Python stages on first boot. Yet every ``lab up`` of the same
plan boots the same image with the same NoCloud seed into the same freshly provisioned VM. So after a
cold ``up`` the lab pauses each VM once, saves its memory and device state (a QEMU migration to a
file) with a copy of its disk overlays, and lets it run on. The next ``up`` of the same plan gives
each VM new overlays on top of those copies and starts QEMU with ``-incoming``: the guest continues
from the moment its first boot was over, with the host keys it generated then (recorded with the
state, so host key checking stays on).

* **Key**: a digest of everything the guest can see: the golden image, QEMU's version, each VM's
  command line without the paths and descriptors of one run (:meth:`VmSpec.guest_signature`), and
  its NoCloud documents (user-data, meta-data, network-config). A change to the stack's user-data,
  the image recipe or the VM shape is a new key, hence a cold boot.
* **Clock**: a guest's clock stands still while it is paused or saved; ``up`` sets every guest's
  clock from the host's once SSH answers (:func:`ght_socle.lab.access.set_guest_clocks`).
* **Randomness**: each QEMU start gives the guest a new VM generation id (``vmgenid``): Linux reseeds
  its random generator when it changes, so two resumes of one state never share random numbers.
* **Cache**: ``<cache>/lab-states/<digest>/`` (``saved.json`` and one directory per VM), the
  :data:`KEEP` most recently used are kept. ``socle lab up --cold`` boots from scratch and saves
  nothing; a state that fails to resume is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.errors import SocleError
from ght_socle.lab.vm import Qmp

FORMAT = 1
KEEP = 3
META_FILE = "saved.json"
MIGRATION_SECONDS = 900.0
# Migration is throttled to 128 MiB/s by default (it is meant for live links); a file takes anything.
MIGRATION_BANDWIDTH = 8 << 30


def root() -> Path:
    return paths.cache_dir() / "lab-states"


def digest(signature: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **signature}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SavedFleet:
    directory: Path

    @property
    def key(self) -> str:
        return self.directory.name

    def vmstate(self, name: str) -> Path:
        return self.directory / name / "vmstate"

    def overlay(self, name: str, label: str) -> Path:
        return self.directory / name / f"{label}.qcow2"

    def host_keys(self, name: str) -> list[str]:
        meta = json.loads((self.directory / META_FILE).read_text())
        return list(meta["vms"][name]["host_keys"])

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def find(key: str, names: list[str]) -> SavedFleet | None:
    """The saved state ``key`` if it is complete for every VM in ``names`` (and mark it recently used)."""
    saved = SavedFleet(root() / key)
    try:
        meta = json.loads((saved.directory / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or any(
            name not in meta.get("vms", {}) or not saved.vmstate(name).is_file() for name in names):
        return None
    os.utime(saved.directory / META_FILE)
    return saved


@dataclass
class VmToSave:
    name: str
    monitor: Path  # the VM's QMP socket
    overlays: list[Path]
    host_keys: list[str]


def save(key: str, vms: list[VmToSave], progress: Callable[[str], None]) -> SavedFleet:
    """Save every VM of ``vms`` (each paused for its turn, then resumed) under ``key``."""
    target = root() / key
    staging = root() / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for entry in vms:
            started = time.monotonic()
            _save_vm(entry, staging / entry.name)
            size = sum(f.stat().st_size for f in (staging / entry.name).iterdir()) / 2**20
            progress(f"  {entry.name}: state saved ({size:.0f} MiB, paused {time.monotonic() - started:.1f} s)")
        meta = {"format": FORMAT, "created_at": time.time(),
                "vms": {entry.name: {"host_keys": entry.host_keys} for entry in vms}}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prune()
    return SavedFleet(target)


def _save_vm(entry: VmToSave, target: Path) -> None:
    target.mkdir(parents=True)
    with Qmp(entry.monitor) as monitor:
        monitor.execute("stop")
        try:
            monitor.execute("migrate-set-parameters", **{"max-bandwidth": MIGRATION_BANDWIDTH})
            monitor.execute("migrate", uri=f"exec:cat > {shlex.quote(str(target / 'vmstate'))}")
            deadline = time.monotonic() + MIGRATION_SECONDS
            while True:
                info = monitor.execute("query-migrate")
                status = info.get("status") if isinstance(info, dict) else None
                if status == "completed":
                    break
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    detail = info.get("error-desc", status) if isinstance(info, dict) else status
                    raise SocleError(f"saving the state of {entry.name} failed: {detail}", where="lab")
                time.sleep(0.2)
            # Migration has flushed and released the disks: the overlays are consistent with the state.
            for overlay in entry.overlays:
                shutil.copyfile(overlay, target / overlay.name)
        finally:
            monitor.execute("cont")


def resume(monitor: Path, name: str, timeout: float = MIGRATION_SECONDS) -> None:
    """Run a VM started with ``-incoming`` once its state is loaded (it was saved paused)."""
    deadline = time.monotonic() + timeout
    try:
        with Qmp(monitor) as qmp:
            while True:
                info = qmp.execute("query-status")
                status = info.get("status") if isinstance(info, dict) else None
                if status == "running":
                    return
                if status in ("paused", "postmigrate", "prelaunch"):
                    qmp.execute("cont")
                    return
                if status != "inmigrate" or time.monotonic() > deadline:
                    raise SocleError(f"QEMU status {status}")
                time.sleep(0.2)
    except SocleError as exc:  # QEMU exits when the state does not load: its monitor is gone
        raise SocleError(f"{name} did not resume from its saved state ({exc.message})", where="lab") from None


def prune(keep: int = KEEP) -> None:
    """Keep the ``keep`` most recently used saved states; drop partial ones left by an interrupted save."""
    if not root().is_dir():
        return
    complete = []
    for child in root().iterdir():
        if child.name.endswith(".partial"):
            if time.time() - child.stat().st_mtime > 3600:
                shutil.rmtree(child, ignore_errors=True)
            continue
        meta = child / META_FILE
        if meta.is_file():
            complete.append((meta.stat().st_mtime, child))
        else:
            shutil.rmtree(child, ignore_errors=True)
    for _mtime, child in sorted(complete, reverse=True)[keep:]:
        shutil.rmtree(child, ignore_errors=True)
