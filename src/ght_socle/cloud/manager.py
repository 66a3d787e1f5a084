"""``socle cloud up / status / down``: start, check and stop the local OpenStack, process by process.

``up`` walks the plane: packages, MariaDB, the TLS front (certificates, HAProxy), every service's
configuration, schema syncs (once per package version), daemons (each in its own session, pid and
kernel start time recorded at once), health through each API's own listener and then through the
front over verified TLS, Keystone's bootstrap and catalog, then the content the stacks look up.
A daemon already running with an unchanged configuration is reused, so a second ``up`` takes
seconds. If ``up`` fails, it stops the daemons it started itself and leaves those it reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keystoneauth1 import exceptions as auth_exceptions
from openstack import exceptions as sdk_exceptions

from ght_socle.cloud import access, database, packages, processes, render, requirements, seed, tls, tls_front
from ght_socle.cloud.layout import Layout
from ght_socle.cloud.processes import Daemon
from ght_socle.cloud.services import (
    CONTROL_PLANE,
    DEFAULT_REGION,
    EXTRA_GRANTS,
    KEYSTONE,
    ApiService,
    control_plane_packages,
    service_named,
)
from ght_socle.errors import SocleError
from ght_socle.lab.image import LAYOUT, cached_image

HEALTH_SECONDS = 300.0
# Schema syncs run two at a time: they are CPU-bound and the machine has two cores.
SYNC_PARALLELISM = 2
FULL_CLOUD_MISSING = ("`socle cloud up` without --control-plane (nova-compute, network agents, cinder-volume, "
                      "object store) is not available yet: run `socle cloud up --control-plane`")

Progress = Callable[[str], None]


@dataclass
class CloudState:
    """What ``up`` recorded: the daemons it runs, config digests, synced schemas, seed results."""

    region: str = DEFAULT_REGION
    plane: str = "control"
    daemons: dict[str, Daemon] = field(default_factory=dict)
    config_digests: dict[str, str] = field(default_factory=dict)
    synced: dict[str, str] = field(default_factory=dict)
    bootstrapped: bool = False
    image_source: str = ""
    # What the catalog was last registered from: unchanged, a warm `up` does not walk it again.
    catalog_fingerprint: str = ""

    @classmethod
    def load(cls, layout: Layout) -> CloudState:
        if not layout.state_file.exists():
            return cls()
        try:
            raw = json.loads(layout.state_file.read_text())
            return cls(region=raw["region"], plane=raw["plane"],
                       daemons={name: Daemon.from_json(d) for name, d in raw["daemons"].items()},
                       config_digests=dict(raw["config_digests"]), synced=dict(raw["synced"]),
                       bootstrapped=bool(raw["bootstrapped"]), image_source=str(raw["image_source"]),
                       catalog_fingerprint=str(raw.get("catalog_fingerprint", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise SocleError(f"unreadable state ({exc}): stop its processes by hand, then "
                             "`socle cloud down --purge`", file=layout.state_file) from exc

    def save(self, layout: Layout) -> None:
        data = {"region": self.region, "plane": self.plane,
                "daemons": {name: d.to_json() for name, d in self.daemons.items()},
                "config_digests": self.config_digests, "synced": self.synced,
                "bootstrapped": self.bootstrapped, "image_source": self.image_source,
                "catalog_fingerprint": self.catalog_fingerprint}
        render.write_private(layout, layout.state_file, json.dumps(data, indent=2) + "\n")


@dataclass
class UpResult:
    state: CloudState
    started: list[str]
    reused: list[str]


@contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per state directory."""
    layout.make()
    with (layout.root / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SocleError("another `socle cloud up/down` is running on this state", file=layout.root) from exc
        yield


def up(progress: Progress, control_plane: bool = True, layout: Layout | None = None) -> UpResult:
    if not control_plane:
        raise SocleError(FULL_CLOUD_MISSING)
    layout = layout or Layout.default()
    # The stack configs first: a bad one must stop `up` before anything is installed or started.
    needs = requirements.read_needs(requirements.stack_config_files())
    region = DEFAULT_REGION if DEFAULT_REGION in needs.regions else sorted(needs.regions)[0]
    _require_kernel_features()
    packages.ensure_installed(control_plane_packages(), progress)
    with _locked(layout):
        state = CloudState.load(layout)
        state.region = region
        started: list[str] = []
        reused: list[str] = []
        try:
            _bring_up(layout, state, needs, progress, started, reused)
        except BaseException:
            if started:
                progress(f"up failed: stopping what it started ({', '.join(started)})")
            for name in reversed(started):
                daemon = state.daemons.pop(name, None)
                if daemon is not None:
                    processes.stop(daemon)
            state.save(layout)
            raise
        state.save(layout)
        return UpResult(state, started, reused)


def _require_kernel_features() -> None:
    # The control plane needs only /proc (pids, sockets); the compute layer will check netns and TUN here.
    if not Path("/proc/self/stat").exists() or not Path("/proc/net/tcp").exists():
        raise SocleError("/proc is not mounted: the local cloud tracks its daemons through /proc")


def _bring_up(layout: Layout, state: CloudState, needs: requirements.StackNeeds, progress: Progress,
              started: list[str], reused: list[str]) -> None:
    secrets = render.Secrets.load_or_create(layout, CONTROL_PLANE)
    # MariaDB
    mariadb = state.daemons.get("mariadb")
    if mariadb is not None and processes.is_alive(mariadb) and database.ping(layout):
        reused.append("mariadb")
    else:
        progress("starting MariaDB (unix socket only)")
        database.initialise(layout)
        mariadb = _start(layout, state, "mariadb", lambda: database.start(layout), started)
        database.wait_ready(layout, lambda: processes.is_alive(mariadb))
    database.ensure_databases(layout, secrets.databases, EXTRA_GRANTS)

    # The TLS front first: Keystone's bootstrap and every client go through it.
    certificates = tls.ensure_certificates(layout)
    _ensure_tls_front(layout, state, certificates, progress, started, reused)

    # Configuration: a daemon whose files changed restarts.
    values = render.context(layout, secrets, state.region)
    environment = render.template_environment()
    for service in CONTROL_PLANE:
        for sub in ("locks",):
            (layout.data / service.name / sub).mkdir(parents=True, exist_ok=True)
        digest = render.write(layout, service, render.render(service, values, environment))
        running = state.daemons.get(service.name)
        if running is not None and state.config_digests.get(service.name) != digest:
            progress(f"{service.name}: configuration changed, restarting")
            processes.stop(running)
            del state.daemons[service.name]
        state.config_digests[service.name] = digest
    for directory in ("glance/images", "glance/staging", "glance/tasks", "keystone"):
        (layout.data / directory).mkdir(parents=True, exist_ok=True)

    # Keystone: sync, start, bootstrap; the others register through it.
    _sync([KEYSTONE], layout, state, progress)
    _ensure_running([KEYSTONE], layout, state, progress, started, reused)
    others = [service for service in CONTROL_PLANE if service is not KEYSTONE]
    regions = sorted(needs.regions | {state.region})
    fingerprint = _catalog_fingerprint(list(CONTROL_PLANE), regions, secrets)
    # Bootstrap again when the catalog changed (it updates the identity endpoints' URLs in place).
    if not state.bootstrapped or state.catalog_fingerprint != fingerprint:
        progress("keystone: bootstrap (admin, region, identity endpoints)")
        _bootstrap(layout, secrets, state.region)
        state.bootstrapped = True
        state.save(layout)
    admin = seed.connect(KEYSTONE.url("/v3"), "admin", secrets.admin, "admin", state.region, certificates.authority)
    if state.catalog_fingerprint != fingerprint or "keystone" in started:
        with _api_errors("registering the services in keystone"):
            seed.register_services(admin, tuple(others), secrets, regions)
        state.catalog_fingerprint = fingerprint
        state.save(layout)

    _sync(others, layout, state, progress)
    _ensure_running(others, layout, state, progress, started, reused)

    progress("seeding what the stacks look up (project, user, flavors, volume types, networks, images)")
    # A new token: the first one's catalog predates the endpoints registered above.
    admin = seed.connect(KEYSTONE.url("/v3"), "admin", secrets.admin, "admin", state.region, certificates.authority)
    with _api_errors("seeding"):
        source = seed.seed_stack_content(admin, needs, secrets, layout,
                                         seed.golden_or_fallback_image(_lab_root_disk()), progress)
    if source is not None:
        state.image_source = source
    access.write_client_files(layout, secrets, state.region)


def _catalog_fingerprint(services: list[ApiService], regions: list[str], secrets: render.Secrets) -> str:
    described = [[service.name, service.url(), [vars(entry) for entry in service.catalog],
                  hashlib.sha256(secrets.services[service.name].encode()).hexdigest()] for service in services]
    return hashlib.sha256(json.dumps([described, regions], sort_keys=True).encode()).hexdigest()


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    """An API that refuses or fails ends `up` with one line (the service's log says more)."""
    try:
        yield
    except (sdk_exceptions.SDKException, auth_exceptions.ClientException) as exc:
        raise SocleError(f"{what}: {' '.join(str(exc).split())[:400]}") from exc


def _lab_root_disk() -> Path | None:
    """The root filesystem disk of the lab's golden image, when the cache holds a complete one."""
    image = cached_image()
    return image.disk(LAYOUT[0]) if image.is_complete() else None


def _start(layout: Layout, state: CloudState, name: str, spawn: Callable[[], Daemon], started: list[str]) -> Daemon:
    daemon = spawn()
    state.daemons[name] = daemon
    started.append(name)
    state.save(layout)  # recorded at once: a crash right after still lets `down` find it
    return daemon


def _package_version(service: ApiService) -> str:
    versions = []
    for package in service.packages:
        query = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                               check=False)
        versions.append(f"{package}={query.stdout.strip()}")
    return ",".join(versions)


def _sync(services: list[ApiService], layout: Layout, state: CloudState, progress: Progress) -> None:
    """Run each service's schema sync unless already done for its installed package version."""
    pending = [s for s in services if state.synced.get(s.name) != _package_version(s)]
    if not pending:
        return
    progress(f"syncing database schemas: {', '.join(s.name for s in pending)} (first time: minutes)")

    def one(service: ApiService) -> None:
        for command in service.sync_commands(layout):
            _run_logged(command, layout.log(f"{service.name}-sync"), f"{service.name} schema sync")

    pool = ThreadPoolExecutor(max_workers=SYNC_PARALLELISM)
    try:
        for service, future in [(s, pool.submit(one, s)) for s in pending]:
            future.result()
            state.synced[service.name] = _package_version(service)
            state.save(layout)
            progress(f"  {service.name}: schema synced")
    finally:
        # A failed sync fails `up` now: the syncs not started yet are dropped.
        pool.shutdown(wait=True, cancel_futures=True)


def _run_logged(command: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                check=False)
    if result.returncode != 0:
        raise SocleError(f"{what} failed (exit {result.returncode}): {error_line(log, start)} (log: {log})")


def error_line(log: Path, start: int = 0) -> str:
    """The most telling line a daemon or command wrote to ``log`` after byte ``start``: its last error."""
    try:
        with log.open("rb") as handle:
            handle.seek(start)
            lines = [line for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    if not lines:
        return "empty log"
    errors = [line for line in lines if any(mark in line for mark in ("ERROR", "Error", "error:", "CRITICAL"))]
    return " ".join((errors or lines)[-1].split())[:300]


def _bootstrap(layout: Layout, secrets: render.Secrets, region: str) -> None:
    url = KEYSTONE.url("/v3")
    command = ["keystone-manage", *KEYSTONE.config_args(layout), "bootstrap",
               "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
               "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
               "--bootstrap-region-id", region, "--bootstrap-admin-url", url,
               "--bootstrap-internal-url", url, "--bootstrap-public-url", url]
    # The password goes through the environment keystone-manage reads, never the command line.
    _run_logged(command, layout.log("keystone-sync"), "keystone bootstrap", {"OS_BOOTSTRAP_PASSWORD": secrets.admin})


def _ensure_tls_front(layout: Layout, state: CloudState, certificates: tls.TlsFiles, progress: Progress,
                      started: list[str], reused: list[str]) -> None:
    """HAProxy on every API's public port; restarted when its configuration or certificate changed."""
    digest = tls_front.write_config(layout, CONTROL_PLANE, certificates)
    running = state.daemons.get(tls_front.NAME)
    if running is not None and processes.is_alive(running) and state.config_digests.get(tls_front.NAME) == digest:
        reused.append(tls_front.NAME)
        return
    if running is not None:
        progress(f"{tls_front.NAME}: configuration or certificate changed, restarting")
        processes.stop(running)
        del state.daemons[tls_front.NAME]
    _run_logged(tls_front.check_command(layout), layout.log(tls_front.NAME), "TLS front configuration check")
    for service in CONTROL_PLANE:
        if processes.port_in_use(service.port):
            raise SocleError(f"{tls_front.NAME}: port 127.0.0.1:{service.port} ({service.name}) is already in use "
                             "by another program")
    progress(f"starting the TLS front (HAProxy) on ports {', '.join(str(s.port) for s in CONTROL_PLANE)}")
    daemon = _start(layout, state, tls_front.NAME,
                    lambda: processes.spawn(tls_front.NAME, tls_front.command(layout), layout.log(tls_front.NAME),
                                            port=KEYSTONE.port, cwd=layout.run),
                    started)
    state.config_digests[tls_front.NAME] = digest
    deadline = time.monotonic() + HEALTH_SECONDS
    while set(s.port for s in CONTROL_PLANE) - processes.listening_ports():
        if not processes.is_alive(daemon) or time.monotonic() > deadline:
            raise SocleError(f"{tls_front.NAME} did not start: {error_line(Path(daemon.log), daemon.log_offset)} "
                             f"(log: {daemon.log})")
        time.sleep(0.5)


def _ensure_running(services: list[ApiService], layout: Layout, state: CloudState, progress: Progress,
                    started: list[str], reused: list[str]) -> None:
    """Start what does not run (all at once), then wait until every API answers, itself and through TLS."""
    for service in services:
        daemon = state.daemons.get(service.name)
        if daemon is not None and processes.is_alive(daemon) \
                and processes.http_answers(service.backend_url(service.health_path)):
            reused.append(service.name)
            continue
        if daemon is not None:
            processes.stop(daemon)
            del state.daemons[service.name]
        if processes.port_in_use(service.backend_port):
            raise SocleError(f"{service.name}: port 127.0.0.1:{service.backend_port} is already in use by another "
                             "program")
        progress(f"starting {service.name} on 127.0.0.1:{service.backend_port} (clients: {service.url()})")
        _start(layout, state, service.name,
               lambda service=service: processes.spawn(service.name, service.start_command(layout),  # type: ignore[misc]
                                                       layout.log(service.name), service.environment(layout),
                                                       service.backend_port, cwd=layout.run),
               started)
    context = tls_front.client_context(tls.TlsFiles.of(layout))
    for service in services:
        _wait_healthy(service, state.daemons[service.name])
        front = service.url(service.health_path)
        if not processes.http_answers(front, timeout=30.0, context=context):
            raise SocleError(f"{service.name} answers on its own port but not through the TLS front at {front} "
                             f"(log: {layout.log(tls_front.NAME)})")


def _wait_healthy(service: ApiService, daemon: Daemon) -> None:
    deadline = time.monotonic() + HEALTH_SECONDS
    url = service.backend_url(service.health_path)
    while time.monotonic() < deadline:
        if processes.http_answers(url):
            return
        if not processes.is_alive(daemon):
            why = error_line(Path(daemon.log), daemon.log_offset)
            raise SocleError(f"{service.name} exited at start: {why} (log: {daemon.log})")
        time.sleep(1.0)
    raise SocleError(f"{service.name} did not answer on {url} within {HEALTH_SECONDS:.0f} s (log: {daemon.log})")


def status(layout: Layout | None = None) -> list[dict[str, Any]]:
    """One row per daemon: running (and answering), not answering, or dead."""
    layout = layout or Layout.default()
    state = CloudState.load(layout)
    certificates = tls.TlsFiles.of(layout)
    context = tls_front.client_context(certificates) if certificates.authority.exists() else None
    rows = []
    for name, daemon in state.daemons.items():
        alive = processes.is_alive(daemon)
        if not alive:
            health = "dead"
        elif name == "mariadb":
            health = "running" if database.ping(layout) else "not answering"
        elif name == tls_front.NAME:
            health = "running" if processes.http_answers(KEYSTONE.url(KEYSTONE.health_path), context=context) \
                else "not answering"
        else:
            service = service_named(name)
            health = "running" if processes.http_answers(service.backend_url(service.health_path)) else "not answering"
        rows.append({"name": name, "status": health, "pid": daemon.pid,
                     "listen": _listens(name, daemon, layout),
                     "rss_mib": round(processes.rss_bytes(daemon.pid) / 2**20) if alive else 0, "log": daemon.log})
    return rows


def _listens(name: str, daemon: Daemon, layout: Layout) -> str:
    if name == tls_front.NAME:
        return "https 127.0.0.1:" + ",".join(str(service.port) for service in CONTROL_PLANE)
    return f"127.0.0.1:{daemon.port}" if daemon.port else f"unix:{layout.mysql_socket}"


def require_state(layout: Layout | None = None) -> CloudState:
    layout = layout or Layout.default()
    if not layout.state_file.exists():
        raise SocleError("no local cloud: run `socle cloud up --control-plane` first", file=layout.root)
    return CloudState.load(layout)


def down(progress: Progress, purge: bool = False, layout: Layout | None = None) -> bool:
    """Stop every daemon ``up`` started (services first, the database last); ``purge`` removes the state."""
    layout = layout or Layout.default()
    if not layout.root.exists():
        return False
    with _locked(layout):
        state = CloudState.load(layout)
        for name in reversed(list(state.daemons)):
            progress(f"stopping {name} (pid {state.daemons[name].pid})")
            processes.stop(state.daemons[name])
            leftover = processes.group_members(state.daemons[name].pid)
            if leftover:
                raise SocleError(f"{name}: processes {leftover} did not stop")
            del state.daemons[name]
            state.save(layout)
    if purge:
        shutil.rmtree(layout.root)
    return True
