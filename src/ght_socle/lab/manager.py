"""``socle lab`` operations: up, status, ssh, inventory, down.

State lives in ``<state dir>/lab/`` (``$SOCLE_STATE`` moves it, so a second lab can run beside the
first): ``lab.json`` (fleet, pids, port, namespace), ``ssh/`` (admin key), ``vms/<name>/`` (qcow2
overlays, NoCloud seed, console log, QEMU pid file and log). ``down`` removes all of it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.errors import SocleError
from ght_socle.lab import access, network, saved_state, seed, vm
from ght_socle.lab.fleet import ADMIN_KEYS_CONFIG, Fleet, Flow, Host, Zone, fleet_from_plan
from ght_socle.lab.image import GoldenImage, Recipe, ensure_image
from ght_socle.lab.tools import require_tools, run

LAB_STACK = "lab"
VM_MEMORY_MB = 1024
VM_VCPUS = 1
# Boot to SSH takes 2-4 minutes per VM on an idle 2-core host under TCG, but the whole fleet shares
# those cores with whatever else runs (a converge, a second lab): wait generously by default.
SSH_WAIT_SECONDS = 1800.0
STATE_FILE = "lab.json"
GENERATED_INVENTORY_FILES = ("hosts.yml", "ssh_config", "known_hosts")
Progress = Callable[[str], None]


def lab_state_dir() -> Path:
    return paths.state_dir() / "lab"


def inventory_dir() -> Path:
    """Where the lab inventory goes: ``$SOCLE_LAB_INVENTORY``, else ``inventories/lab`` for the project's
    own lab, else ``<state>/lab/inventory`` (a second lab never overwrites the first one's inventory)."""
    env = os.environ.get("SOCLE_LAB_INVENTORY")
    if env:
        return Path(env).resolve()
    if "SOCLE_STATE" not in os.environ:
        return paths.inventories_dir() / "lab"
    return lab_state_dir() / "inventory"


@dataclass
class VmState:
    name: str
    index: int
    pid: int = 0
    started_at: float = 0.0
    host_keys: list[str] = field(default_factory=list)
    ready_seconds: float | None = None  # start -> SSH answering, measured by `up`
    resumed: bool = False  # started from the saved state of its first boot (see saved_state)


@dataclass
class LabState:
    directory: Path
    namespace: str
    lab_id: str
    image: str
    accelerator: str
    ssh_port: int
    fleet: dict[str, Any]
    vms: dict[str, VmState]
    created_at: float
    saved_state: str | None = None  # key of the saved state this lab was resumed from or saved to

    @property
    def file(self) -> Path:
        return self.directory / STATE_FILE

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "directory"}
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
        temporary.replace(self.file)

    @classmethod
    def load(cls, directory: Path) -> LabState | None:
        file = directory / STATE_FILE
        if not file.exists():
            return None
        try:
            data = json.loads(file.read_text())
            vms = {name: VmState(**raw) for name, raw in data.pop("vms").items()}
            return cls(directory=directory, vms=vms, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise SocleError(f"unreadable lab state ({exc}); remove it with `socle lab down`", file=file) from None

    def fleet_model(self) -> Fleet:
        return fleet_from_json(self.fleet)

    def vm_dir(self, name: str) -> Path:
        return self.directory / "vms" / name

    @property
    def key(self) -> Path:
        return self.directory / "ssh" / "id_ed25519"

    @property
    def marker(self) -> str:
        """A string every QEMU of this lab has on its command line (its state directory)."""
        return str(self.directory / "vms") + "/"


def fleet_to_json(fleet: Fleet) -> dict[str, Any]:
    return {"hosts": [asdict(h) for h in fleet.hosts],
            "zones": {name: str(zone.cidr) for name, zone in fleet.zones.items()},
            "flows": [asdict(f) for f in fleet.flows], "outputs": fleet.outputs, "bastion": fleet.bastion}


def fleet_from_json(data: dict[str, Any]) -> Fleet:
    hosts = [Host(**{**h, "groups": tuple(h["groups"])}) for h in data["hosts"]]
    zones = {name: Zone(name, ipaddress.IPv4Network(cidr)) for name, cidr in data["zones"].items()}
    flows = [Flow(**{**f, "sources": tuple(f["sources"]), "destinations": tuple(f["destinations"])})
             for f in data["flows"]]
    return Fleet(hosts=hosts, zones=zones, flows=flows, outputs=data["outputs"], bastion=data["bastion"])


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One lab command at a time per state directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SocleError("another `socle lab` command is running on this lab", file=directory) from None
        yield


# --- planning -----------------------------------------------------------------------------------------

def plan_fleet(admin_public_key: str) -> Fleet:
    """The ``lab`` stack's offline plan, with the lab's admin key handed to the stack's user-data."""
    from ght_socle.plan import run_plan  # imported here: loading Pulumi costs a second

    plan = run_plan(stack=LAB_STACK, config_overrides={ADMIN_KEYS_CONFIG: [admin_public_key]})
    return fleet_from_plan(plan)


# --- up -------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SocleError(f"port 127.0.0.1:{port} (bastion SSH) is already in use: free it or pick another "
                             "with --ssh-port", where="lab") from None


def vm_status(state: LabState, name: str) -> str:
    """running | crashed | stopped (the guest powered itself off)."""
    entry = state.vms[name]
    if entry.pid and vm.is_our_qemu(entry.pid, state.marker):
        return "running"
    console = state.vm_dir(name) / "console.log"
    try:
        tail = console.read_bytes()[-4000:].decode(errors="replace")
    except OSError:
        tail = ""
    if "reboot: Power down" in tail or "reboot: System halted" in tail:
        return "stopped"
    return "crashed"


def up(progress: Progress, ssh_port: int | None = None, only: list[str] | None = None,
       fleet: Fleet | None = None, recipe: Recipe | None = None,
       wait_seconds: float = SSH_WAIT_SECONDS, cold: bool = False) -> LabState:
    """Boot the lab (or the VMs of it that are not running); return its state once every VM answers SSH.

    ``only`` boots a subset of the stack's instances (the bastion is always included); it applies
    when the lab is created, a running lab keeps its fleet. A new lab resumes the saved state of an
    earlier lab of the same plan when there is one, else boots and saves its state for the next time;
    ``cold`` boots from scratch and saves nothing (see :mod:`ght_socle.lab.saved_state`).
    """
    require_tools("qemu-system-x86_64", "qemu-img", "ip", "nft", "genisoimage", "ssh", "ssh-keygen")
    directory = lab_state_dir()
    with _locked(directory):
        state = LabState.load(directory)
        if state is None and ssh_port is not None:
            _check_port_free(ssh_port)  # before anything is created
        key = access.ensure_admin_key(directory / "ssh", paths.cache_dir() / "lab-ssh")
        new_lab = state is None
        if state is None:
            if fleet is None:
                progress("planning the lab stack (offline plan)")
                fleet = plan_fleet(access.public_key(key))
            if only:
                fleet = fleet.subset(only)
            progress(f"lab fleet: {', '.join(h.name for h in fleet.hosts)}")
            image = ensure_image(recipe, progress=progress)
            accelerator = vm.choose_accelerator(image.kernel)
            state = LabState(directory=directory, namespace=network.namespace_name(directory),
                             lab_id=network.lab_id(directory), image=str(image.directory), accelerator=accelerator,
                             ssh_port=ssh_port or _free_port(), fleet=fleet_to_json(fleet),
                             vms={h.name: VmState(h.name, i) for i, h in enumerate(fleet.hosts)},
                             created_at=time.time())
            state.save()
        image = GoldenImage(Path(state.image), recipe or Recipe())
        if not image.is_complete():
            raise SocleError(f"the lab's golden image {image.directory} is gone: run `socle lab down` then "
                             "`socle lab up`", where="lab")
        to_start = [name for name in state.vms if vm_status(state, name) != "running"]
        if not to_start:
            progress("every lab VM is already running")
        started: list[str] = []
        created_network = not network.namespace_exists(state.namespace)
        resumed_from: saved_state.SavedFleet | None = None
        launching = False
        try:
            fleet_model = state.fleet_model()
            state_key = saved_state.digest(_guest_signature(state, fleet_model, image)) if new_lab else None
            if state_key and not cold:
                resumed_from = saved_state.find(state_key, list(state.vms))
            bridges = network.create_network(state.namespace, fleet_model)
            if state.vms and fleet_model.bastion in to_start:
                _check_port_free(state.ssh_port)
            if resumed_from:
                progress(f"resuming {len(to_start)} VM(s) from the saved state of their first boot "
                         f"({resumed_from.key}; `socle lab up --cold` boots from scratch)")
                state.saved_state = resumed_from.key
            elif to_start:
                progress(f"starting {len(to_start)} VM(s) under {state.accelerator.upper()} "
                         f"({VM_VCPUS} vCPU, {VM_MEMORY_MB} MB each)")
            else:
                progress("checking SSH on every VM")
            launching = True
            for name in to_start:
                _start_vm(state, fleet_model, image, bridges, name, resumed_from)
                started.append(name)
                state.save()
            write_inventory(state)
            _wait_for_ssh(state, fleet_model, progress, wait_seconds)
            if resumed_from:
                # Hours or days may have passed since the save: a guest must not run with that clock.
                access.set_guest_clocks(inventory_dir() / "ssh_config", list(state.vms))
            elif state_key and not cold:
                _save_first_boot(state, image, state_key, progress)
            write_inventory(state)
        except BaseException as failure:
            # A VM that did not come back from the state condemns it (an interrupted up does not).
            if resumed_from and launching and isinstance(failure, SocleError):
                resumed_from.discard()
                progress(f"discarded the saved state {resumed_from.key}: the next `socle lab up` boots from scratch")
            progress("lab up failed: stopping what this run started")
            for name in started:
                vm.stop(state.vms[name].pid, state.marker)
            if all(vm_status(state, name) != "running" for name in state.vms):
                _remove_everything(state)
            elif created_network:
                pass  # VMs of an earlier run still use it
            raise
        return state


@dataclass
class _VmPlan:
    """What one VM of the lab is made of, before anything is created."""

    host: Host
    zone_macs: list[str]
    nat_mac: str
    seed_documents: dict[str, str]
    overlays: list[Path]

    def spec(self, state: LabState, image: GoldenImage, zone_fds: list[int],
             incoming: Path | None = None) -> vm.VmSpec:
        return vm.VmSpec(name=self.host.name, directory=state.vm_dir(self.host.name), accelerator=state.accelerator,
                         memory_mb=VM_MEMORY_MB, vcpus=VM_VCPUS, kernel=image.kernel, initrd=image.initrd,
                         disks=self.overlays, seed=state.vm_dir(self.host.name) / "seed.iso",
                         zone_nics=list(zip(zone_fds, self.zone_macs, strict=True)), nat_mac=self.nat_mac,
                         ssh_forward_port=state.ssh_port if self.host.is_bastion else None, incoming=incoming)


def _overlays(state: LabState, image: GoldenImage, name: str) -> list[Path]:
    """The VM's qcow2 overlays, one per file system of the image, root first."""
    return [state.vm_dir(name) / f"{fs.label}.qcow2" for fs in image.recipe.layout]


def _vm_plan(state: LabState, fleet: Fleet, image: GoldenImage, name: str) -> _VmPlan:
    host = fleet.host(name)
    index = state.vms[name].index
    zone_macs = [seed.mac_address(index, nic) for nic in range(len(host.addresses))]
    nat_mac = seed.mac_address(index, 0xFF)
    return _VmPlan(host=host, zone_macs=zone_macs, nat_mac=nat_mac,
                   seed_documents=seed.seed_documents(host, seed.network_config(host, fleet, zone_macs, nat_mac)),
                   overlays=_overlays(state, image, name))


def _guest_signature(state: LabState, fleet: Fleet, image: GoldenImage) -> dict[str, Any]:
    """Everything the lab's guests can see of their machine and provisioning (a saved state's key)."""
    plans = {name: _vm_plan(state, fleet, image, name) for name in state.vms}
    return {"image": Path(state.image).name, "qemu": vm.qemu_version(),
            "vms": {name: {"machine": plan.spec(state, image, [0] * len(plan.zone_macs)).guest_signature(),
                           "seed": plan.seed_documents} for name, plan in plans.items()}}


def _start_vm(state: LabState, fleet: Fleet, image: GoldenImage, bridges: dict[str, str], name: str,
              resume: saved_state.SavedFleet | None = None) -> None:
    plan = _vm_plan(state, fleet, image, name)
    entry = state.vms[name]
    directory = state.vm_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    for fs, overlay in zip(image.recipe.layout, plan.overlays, strict=True):
        if overlay.exists():  # a restarted VM keeps its disks
            continue
        if resume:
            backing, backing_format = resume.overlay(name, fs.label), "qcow2"
        else:
            backing, backing_format = image.disk(fs), "raw"
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", backing_format, overlay],
            what=f"create the {fs.mountpoint} overlay of {name}")
    seed_file = directory / "seed.iso"
    if not seed_file.exists():
        seed.write_seed(seed_file, plan.host, plan.seed_documents)
    fds: list[int] = []
    try:
        for nic, zone_name in enumerate(plan.host.addresses):
            fds.append(network.open_tap(f"t{state.lab_id[:6]}{entry.index:02d}{nic}", state.namespace,
                                        bridges[zone_name]))
        entry.pid = vm.start(plan.spec(state, image, fds, resume.vmstate(name) if resume else None))
        if resume:
            try:
                saved_state.resume(directory / "qmp.sock", name)
            except SocleError:
                vm.stop(entry.pid, state.marker)
                raise
        entry.started_at = time.time()
        entry.ready_seconds = None
        entry.resumed = resume is not None
        if resume:
            entry.host_keys = resume.host_keys(name)
    finally:
        for fd in fds:
            os.close(fd)


def _save_first_boot(state: LabState, image: GoldenImage, key: str, progress: Progress) -> None:
    """Save every VM's state right after its first boot, for the next `up` of the same plan."""
    progress("saving the state of each VM after its first boot (the next `socle lab up` resumes it)")
    to_save = [saved_state.VmToSave(name=name, monitor=state.vm_dir(name) / "qmp.sock",
                                    overlays=_overlays(state, image, name), host_keys=entry.host_keys)
               for name, entry in state.vms.items()]
    try:
        saved_state.save(key, to_save, progress)
    except (SocleError, OSError) as exc:
        # The lab itself is fine: a state that could not be saved only means the next up boots again.
        progress(f"warning: the VM states were not saved ({exc}); the next `socle lab up` boots from scratch")
        return
    state.saved_state = key
    state.save()
    try:  # each guest's clock stood still for the second or so it was paused
        access.set_guest_clocks(inventory_dir() / "ssh_config", list(state.vms))
    except SocleError as exc:
        progress(f"warning: {exc.message}")


def _wait_for_ssh(state: LabState, fleet: Fleet, progress: Progress, wait_seconds: float) -> None:
    """Wait until every VM printed its host keys and answers SSH through the bastion."""
    deadline = time.monotonic() + wait_seconds
    pending = [h.name for h in fleet.hosts]
    # The bastion first: every other VM is reached through it.
    pending.sort(key=lambda n: n != fleet.bastion)
    last_report = 0.0
    while pending:
        if time.monotonic() > deadline:
            raise SocleError(f"VMs not reachable over SSH after {wait_seconds:.0f} s: {', '.join(pending)} "
                             f"(consoles in {state.directory / 'vms'})", where="lab")
        for name in list(pending):
            status = vm_status(state, name)
            if status != "running":
                raise SocleError(f"VM {name} {status} while booting (console: "
                                 f"{state.vm_dir(name) / 'console.log'})", where="lab")
            entry = state.vms[name]
            if not entry.host_keys:
                keys = access.host_keys_from_console(state.vm_dir(name) / "console.log")
                if keys:
                    entry.host_keys = keys
                    state.save()
                    write_inventory(state)
            if not entry.host_keys:
                continue
            if name != fleet.bastion and fleet.bastion in pending:
                continue
            if access.ssh_works(inventory_dir() / "ssh_config", name):
                if entry.ready_seconds is None:
                    entry.ready_seconds = round(time.time() - entry.started_at, 1)
                    state.save()
                pending.remove(name)
                progress(f"  {name}: SSH ready ({entry.ready_seconds:.0f} s after start)")
        if pending and time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            progress(f"  waiting for SSH on {', '.join(pending)}")
        if pending:
            time.sleep(3)


# --- inventory -------------------------------------------------------------------------------------------

def known_hosts_lines(state: LabState) -> list[str]:
    return [f"{name} {key}" for name, entry in state.vms.items() for key in entry.host_keys]


def write_inventory(state: LabState, directory: Path | None = None) -> Path:
    """Write hosts.yml, ssh_config and known_hosts for the lab (same format as ``socle inventory``)."""
    from ght_socle.inventory import write_inventory as write_stack_inventory

    target = directory or inventory_dir()
    target.mkdir(parents=True, exist_ok=True)
    fleet = state.fleet_model()
    overrides = {fleet.bastion: {"HostName": "127.0.0.1", "Port": str(state.ssh_port)}}
    write_stack_inventory(fleet.outputs, target, ssh_overrides=overrides, identity_file=state.key,
                          known_hosts_lines=known_hosts_lines(state), source=f"lab {state.directory}")
    _link_committed_inventory_files(target)
    return target


def _link_committed_inventory_files(target: Path) -> None:
    """A lab inventory outside inventories/lab shares the committed group_vars and waivers."""
    committed = paths.inventories_dir() / "lab"
    if target.resolve() == committed.resolve() or not committed.is_dir():
        return
    for item in committed.iterdir():
        if item.name in GENERATED_INVENTORY_FILES:
            continue
        link = target / item.name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(item.resolve())


# --- status / ssh / down ---------------------------------------------------------------------------------

def require_state() -> LabState:
    state = LabState.load(lab_state_dir())
    if state is None:
        raise SocleError("no lab is up here: run `socle lab up`", file=lab_state_dir())
    return state


def status(state: LabState) -> list[dict[str, Any]]:
    fleet = state.fleet_model()
    rows = []
    for host in fleet.hosts:
        entry = state.vms[host.name]
        rows.append({"name": host.name, "zone": host.zone, "addresses": host.addresses,
                     "groups": list(host.groups), "status": vm_status(state, host.name), "pid": entry.pid,
                     "bastion": host.is_bastion, "ready_seconds": entry.ready_seconds,
                     "resumed": entry.resumed})
    return rows


def ssh(state: LabState, name: str, command: list[str]) -> int:
    state.fleet_model().host(name)  # clear error on an unknown name
    config = inventory_dir() / "ssh_config"
    if not config.exists():
        write_inventory(state)
    argv = access.ssh_command(config, name, command or None)
    if not command:
        argv.remove("BatchMode=yes")
        argv.remove("-o")
    return subprocess.run(argv, check=False).returncode


def down(progress: Progress) -> bool:
    """Stop every VM of this lab and remove all it created; False when there was nothing to take down."""
    directory = lab_state_dir()
    if not directory.exists():
        return False
    with _locked(directory):
        state = LabState.load(directory)
        if state is None:
            shutil.rmtree(directory, ignore_errors=True)
            return False
        _remove_everything(state, progress)
    return True


def _remove_everything(state: LabState, progress: Progress = lambda _m: None) -> None:
    for name, entry in state.vms.items():
        if entry.pid and vm.is_our_qemu(entry.pid, state.marker):
            progress(f"stopping {name} (pid {entry.pid})")
            vm.stop(entry.pid, state.marker)
    # A QEMU this lab started but never recorded (interrupted up) still carries the marker.
    for pid in vm.lab_qemu_pids(state.marker):
        vm.stop(pid, state.marker)
    network.delete_network(state.namespace)
    target = inventory_dir()
    for generated in GENERATED_INVENTORY_FILES:
        (target / generated).unlink(missing_ok=True)
    for child in state.directory.iterdir():
        if child.name != ".lock":
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    progress(f"lab removed (namespace {state.namespace}, VMs, overlays, seeds, state)")
