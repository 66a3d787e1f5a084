"""QEMU processes: accelerator choice, launch, liveness and stop.

KVM is used only when a guest really runs under it: on some hosts ``/dev/kvm`` answers but guests
hang or abort. A short probe boots the golden kernel under KVM and waits for the kernel to get
through its initialisation; otherwise the lab uses TCG (``thread=multi``). The verdict is cached
per host boot (``/proc/sys/kernel/random/boot_id``).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ght_socle import paths
from ght_socle.errors import SocleError
from ght_socle.lab.tools import require_tools

QEMU = "qemu-system-x86_64"
KVM_PROBE_SECONDS = 12.0
# Kernel messages printed only once the kernel has initialised and looks for its root filesystem.
_PROBE_MARKERS = ("Run /init", "VFS: Cannot open root device", "Kernel panic", "Freeing unused kernel")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def choose_accelerator(kernel: Path, cache: Path | None = None) -> str:
    """``kvm`` if a guest kernel really boots under KVM on this host, else ``tcg`` (cached per host boot)."""
    cache_file = (cache or paths.cache_dir()) / "accelerator.json"
    boot_id = _boot_id()
    try:
        cached = json.loads(cache_file.read_text())
        if cached.get("boot_id") == boot_id and cached.get("accelerator") in ("kvm", "tcg"):
            return str(cached["accelerator"])
    except (OSError, ValueError):
        pass
    accelerator = "kvm" if _kvm_boots(kernel) else "tcg"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps({"boot_id": boot_id, "accelerator": accelerator}) + "\n")
    return accelerator


def _kvm_boots(kernel: Path) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="ghtlab-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        process = subprocess.Popen(
            [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none",
             "-no-reboot", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1",
             "-serial", f"file:{console}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + KVM_PROBE_SECONDS
            while time.monotonic() < deadline:
                text = console.read_text(errors="replace") if console.exists() else ""
                if any(marker in text for marker in _PROBE_MARKERS):
                    return True
                if process.poll() is not None:
                    return False
                time.sleep(0.5)
            return False
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


# TCG's translation cache defaults to 1 GiB per VM on top of guest RAM; 256 MiB is plenty for a
# Debian guest and keeps two 5-VM labs within a 24 GB host.
TCG_OPTIONS = "tcg,thread=multi,tb-size=256"

# Several TCG guests share two host cores: udev and services may need far more than systemd's 90 s
# default before a labelled disk shows up; a timeout there would drop the VM into emergency mode.
KERNEL_COMMAND_LINE = ("root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 quiet "
                       "systemd.default_timeout_start_sec=900 systemd.default_device_timeout_sec=900")


@dataclass
class VmSpec:
    """Everything needed to start one VM; paths live in the VM's state directory."""

    name: str
    directory: Path
    accelerator: str
    memory_mb: int
    vcpus: int
    kernel: Path
    initrd: Path
    disks: list[Path]  # qcow2 overlays, root first
    seed: Path
    zone_nics: list[tuple[int, str]]  # (tap fd, mac)
    nat_mac: str
    ssh_forward_port: int | None  # bastion only: 127.0.0.1:<port> -> guest :22
    incoming: Path | None = None  # a saved VM state to resume instead of booting (see saved_state)

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.directory / "console.log"

    @property
    def qmp(self) -> Path:
        return self.directory / "qmp.sock"

    def argv(self) -> list[str]:
        accel = ["-accel", "kvm", "-cpu", "host"] if self.accelerator == "kvm" else ["-accel", TCG_OPTIONS]
        argv = [QEMU, "-name", f"{self.name},process=ghtlab-{self.name}", *accel, "-machine", "pc",
                "-m", str(self.memory_mb), "-smp", str(self.vcpus), "-nodefaults", "-display", "none",
                "-kernel", str(self.kernel), "-initrd", str(self.initrd),
                "-append", KERNEL_COMMAND_LINE,
                "-serial", f"file:{self.console}", "-qmp", f"unix:{self.qmp},server=on,wait=off",
                "-pidfile", str(self.pidfile), "-daemonize",
                "-device", "virtio-rng-pci",
                # A new generation id at every QEMU start: a guest resumed from a saved state sees it
                # change and reseeds its random generator (Linux vmgenid), so no two runs share it.
                "-device", "vmgenid,guid=auto"]
        for disk in self.disks:
            argv += ["-drive", f"file={disk},if=virtio,format=qcow2,discard=unmap"]
        argv += ["-drive", f"file={self.seed},if=virtio,format=raw,readonly=on"]
        # Fixed PCI slots keep NIC order stable (eth0.. = zone NICs in address order, last = NAT).
        for index, (fd, mac) in enumerate(self.zone_nics):
            argv += ["-netdev", f"tap,id=zone{index},fd={fd}",
                     "-device", f"virtio-net-pci,netdev=zone{index},mac={mac},addr={0x18 + index:#x}"]
        forward = f",hostfwd=tcp:127.0.0.1:{self.ssh_forward_port}-:22" if self.ssh_forward_port else ""
        argv += ["-netdev", f"user,id=nat,net=10.0.2.0/24{forward}",
                 "-device", f"virtio-net-pci,netdev=nat,mac={self.nat_mac},addr=0x1f"]
        if self.incoming is not None:
            argv += ["-incoming", f"exec:cat {shlex.quote(str(self.incoming))}"]
        return argv

    def guest_signature(self) -> list[str]:
        """The command line with what the guest cannot see taken out (paths of this run and of the cache,
        descriptors, the host side of the SSH forward): two specs with the same signature run the same virtual
        machine, so a state saved from one resumes in the other."""
        def in_image(file: Path) -> Path:  # the image's own directory (its recipe hash), not the cache's place
            return Path("/images", file.parent.name, file.name)

        generic = replace(self, directory=Path("/vm"), disks=[Path(f"/vm/disk{i}") for i in range(len(self.disks))],
                          kernel=in_image(self.kernel), initrd=in_image(self.initrd),
                          seed=Path("/vm/seed"), zone_nics=[(index, mac) for index, (_fd, mac)
                                                             in enumerate(self.zone_nics)],
                          ssh_forward_port=None, incoming=None)
        return generic.argv()


def start(spec: VmSpec) -> int:
    """Start QEMU daemonized; return its pid. QEMU returns only once the VM runs, or fails with a message."""
    require_tools(QEMU)
    spec.console.unlink(missing_ok=True)
    spec.pidfile.unlink(missing_ok=True)
    log = spec.directory / "qemu.log"
    with log.open("w") as log_file:
        completed = subprocess.run(spec.argv(), stdout=log_file, stderr=subprocess.STDOUT, check=False,
                                   pass_fds=[fd for fd, _mac in spec.zone_nics], timeout=120)
    if completed.returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        raise SocleError(f"qemu failed to start {spec.name}: {lines[-1] if lines else completed.returncode}",
                         where="lab")
    return read_pid(spec.pidfile) or 0


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_qemu(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and is a QEMU whose command line mentions ``marker`` (our state dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return QEMU in cmdline and marker in cmdline


def stop(pid: int, marker: str, grace_seconds: float = 10.0) -> None:
    """Stop our QEMU ``pid``: SIGTERM (QEMU exits cleanly), then SIGKILL after ``grace_seconds``."""
    if not is_our_qemu(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not is_our_qemu(pid, marker):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not is_our_qemu(pid, marker):
            return
        time.sleep(0.1)


def lab_qemu_pids(marker: str) -> list[int]:
    """Every QEMU process on the host whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_our_qemu(int(entry.name), marker):
            pids.append(int(entry.name))
    return sorted(pids)


def qemu_version() -> str:
    """``QEMU emulator version X.Y.Z (...)``: part of a saved state's key (states do not cross versions)."""
    completed = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=False)
    return completed.stdout.splitlines()[0].strip() if completed.stdout else "unknown"


class Qmp:
    """A minimal synchronous QMP client (one command at a time; asynchronous events are skipped)."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        try:
            self._socket.connect(str(path))
        except OSError as exc:
            self._socket.close()
            raise SocleError(f"cannot reach the QEMU monitor {path}: {exc}", where="lab") from None
        self._reader = self._socket.makefile("r", encoding="utf-8")
        try:
            # A QEMU that fails to load an incoming state exits right after accepting: the greeting
            # read then ends in a reset or an empty stream, which is an answer about QEMU, not a bug.
            if not self._reader.readline():
                raise SocleError(f"the QEMU monitor {path} closed before its greeting", where="lab")
            self.execute("qmp_capabilities")
        except OSError as exc:
            self.close()
            raise SocleError(f"the QEMU monitor {path} closed before its greeting ({exc})", where="lab") from None
        except SocleError:
            self.close()
            raise

    def execute(self, command: str, **arguments: object) -> object:
        message: dict[str, object] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self._socket.sendall(json.dumps(message).encode() + b"\n")
            while True:
                line = self._reader.readline()
                if not line:
                    raise OSError("end of stream")
                reply = json.loads(line)
                if "return" in reply or "error" in reply:
                    break
        except OSError as exc:  # QEMU exited (or hung past the timeout) while we talked to it
            raise SocleError(f"the QEMU monitor closed during {command} ({exc})", where="lab") from None
        if "error" in reply:
            raise SocleError(f"QEMU refused {command}: {reply['error'].get('desc', reply['error'])}", where="lab")
        return reply["return"]

    def close(self) -> None:
        self._reader.close()
        self._socket.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
