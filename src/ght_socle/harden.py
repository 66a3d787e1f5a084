"""Drive the hardening playbook with ansible-runner: the engine behind ``socle harden``.

What the driver guarantees, whatever the roles do:

* the PSSI parameters reach the roles from the catalog (``ght_pssi_params``, ``ght_pssi_enforcement``),
  never re-typed in YAML;
* progress per task and host on stderr, per-host stats at the end;
* artifacts under ``<state>/runner/artifacts/<id>``, rotated (the last ``keep`` runs);
* no secret on disk: secret-looking variables of the caller's environment are not passed to Ansible
  (ansible-runner writes the child's environment into the artifacts), and secret tasks are ``no_log``;
* Mitogen's ``mitogen_linear`` strategy when the package is installed (about 4x fewer seconds per
  task under full emulation), pipelining on, one fork per host.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ght_socle import paths
from ght_socle.catalog import Catalog, default_catalog, load_yaml
from ght_socle.errors import ConfigError, SocleError
from ght_socle.roles_index import role_tags

DEFAULT_PLAYBOOK = "playbooks/site.yml"
DEFAULT_KEEP_ARTIFACTS = 10
# Tags Ansible understands on its own, besides the ones the roles and playbooks declare.
SPECIAL_TAGS = frozenset({"all", "always", "never", "tagged", "untagged"})
# Environment variables never handed to Ansible (ansible-runner would write them into the artifacts).
SECRET_ENV = re.compile(r"(PASS|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE|^OS_|^AWS_|^AZURE_|^PULUMI_ACCESS|VAULT)",
                        re.IGNORECASE)


@dataclass
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class HardenResult:
    """What one run did, host by host."""

    status: str
    rc: int
    duration_s: float
    artifact_dir: Path
    hosts: dict[str, HostStats] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    check_mode: bool = False
    strategy: str = "linear"

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.failed)

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.unreachable)

    @property
    def changed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.changed)

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and not self.failed_hosts and not self.unreachable_hosts

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rc": self.rc,
            "succeeded": self.succeeded,
            "check_mode": self.check_mode,
            "strategy": self.strategy,
            "duration_s": round(self.duration_s, 1),
            "artifact_dir": str(self.artifact_dir),
            "hosts": {h: s.as_dict() for h, s in sorted(self.hosts.items())},
            "failures": [f.as_dict() for f in self.failures],
        }


def resolve_inventory(path: Path) -> Path:
    """The inventory file: ``PATH`` itself, or ``PATH/hosts.yml`` for an inventory directory.

    A directory is not handed to Ansible as is: it also holds ``ssh_config`` and ``known_hosts``,
    which Ansible's inventory plugins would try to parse as inventories.
    """
    candidate = path / "hosts.yml" if path.is_dir() else path
    if not candidate.is_file():
        raise ConfigError("inventory not found (expected a hosts.yml file or a directory holding one)", file=candidate)
    data = load_yaml(candidate)
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        raise ConfigError("not a YAML inventory: expected a top-level 'all' mapping", file=candidate)
    return candidate.resolve()


def inventory_hosts(inventory: Path) -> list[str]:
    """Every host named in a YAML inventory (all.hosts and every group's hosts)."""
    data = load_yaml(inventory) or {}
    names: set[str] = set()

    def walk(group: Mapping[str, Any]) -> None:
        names.update((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            if isinstance(child, Mapping):
                walk(child)

    walk(data.get("all") or {})
    return sorted(names)


def pssi_extravars(catalog: Catalog) -> dict[str, Any]:
    """The catalog's effective parameters and enforcement levels, as the roles read them."""
    effective = catalog.effective
    return {
        "ght_pssi_catalog_version": catalog.meta.version,
        "ght_pssi_params": {rule_id: dict(rule.params) for rule_id, rule in effective.items() if rule.params},
        "ght_pssi_enforcement": {rule_id: rule.enforcement for rule_id, rule in effective.items()},
    }


def playbook_tags(playbook: Path) -> set[str]:
    """Tags declared directly in a playbook (plays and their tasks)."""
    found: set[str] = set()
    plays = load_yaml(playbook) or []
    for play in plays if isinstance(plays, list) else []:
        for item in [play, *(play.get("tasks") or []), *(play.get("roles") or [])]:
            if isinstance(item, dict):
                tags = item.get("tags") or []
                found.update([tags] if isinstance(tags, str) else [str(t) for t in tags])
    return found


def known_tags(playbook: Path, roles_dir: Path | None = None) -> set[str]:
    tags = set(SPECIAL_TAGS) | playbook_tags(playbook)
    for role_tag_set in role_tags(roles_dir).values():
        tags |= role_tag_set
    return tags


def check_tags(requested: Sequence[str], playbook: Path, roles_dir: Path | None = None) -> None:
    known = known_tags(playbook, roles_dir)
    unknown = sorted(t for t in requested if t not in known)
    if unknown:
        raise ConfigError(f"unknown tag(s) {', '.join(unknown)} (tags look like pssi_osh_002 or anssi_bp028v2_r12; "
                          f"see `socle pssi coverage`)", where="--tags")


def mitogen_strategy_dir() -> Path | None:
    """Directory of Mitogen's Ansible strategy plugins, or None when Mitogen is not installed."""
    try:
        import ansible_mitogen  # optional accelerator, probed at run time
    except ImportError:
        return None
    directory = Path(ansible_mitogen.__file__).resolve().parent / "plugins" / "strategy"
    return directory if (directory / "mitogen_linear.py").is_file() else None


def ansible_settings(forks: int, *, use_mitogen: bool) -> tuple[dict[str, str], str]:
    """Environment settings for ansible-playbook, and the strategy they select."""
    root = paths.project_root()
    settings = {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(paths.roles_dir()),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCAL_TEMP": str(paths.state_dir() / "runner" / "tmp"),
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s",
        # Under full emulation an SSH login through the bastion can take tens of seconds.
        "ANSIBLE_TIMEOUT": "300",
        # A host that fails mid-run still applies what was already written (sysctl, PAM stacks,
        # firewall, audit rules): otherwise the next run finds the files unchanged, notifies nothing,
        # and the host stays configured on disk but not live.
        "ANSIBLE_FORCE_HANDLERS": "True",
        # The PSSI variables are the extra vars computed from the catalog in use: the checkout's vars
        # plugin (ght.socle.pssi, for plain ansible-playbook runs) would only compute them again.
        "ANSIBLE_VARS_ENABLED": "host_group_vars",
    }
    strategy = "linear"
    strategy_dir = mitogen_strategy_dir() if use_mitogen else None
    if strategy_dir is not None:
        settings["ANSIBLE_STRATEGY_PLUGINS"] = str(strategy_dir)
        settings["ANSIBLE_STRATEGY"] = "mitogen_linear"
        strategy = "mitogen_linear"
    return settings, strategy


@contextlib.contextmanager
def scrubbed_environment() -> Iterator[list[str]]:
    """Hide secret-looking variables from the child process (and so from the runner's artifacts)."""
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if SECRET_ENV.search(name)}
    try:
        yield sorted(hidden)
    finally:
        os.environ.update(hidden)


class ProgressPrinter:
    """Turns ansible-runner events into one line per task and one per host result (stderr)."""

    def __init__(self, stream: TextIO | None = None, *, verbose_ok: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose_ok = verbose_ok
        self.task_count = 0
        self.failures: list[TaskFailure] = []
        self.stats: dict[str, Any] | None = None

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or data.get("remote_addr") or "?"
        task = (data.get("task") or "").strip()
        if kind == "playbook_on_play_start":
            self._print(f"== play: {data.get('play', '')}")
        elif kind == "playbook_on_task_start":
            self.task_count += 1
            self._print(f"-- [{self.task_count}] {task}")
        elif kind == "runner_on_ok":
            changed = (data.get("res") or {}).get("changed")
            if changed or self.verbose_ok:
                self._print(f"   {host}: {'changed' if changed else 'ok'}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            message = _result_message(data.get("res") or {})
            self.failures.append(TaskFailure(host, task, message))
            self._print(f"   {host}: FAILED: {message}")
        elif kind == "runner_on_unreachable":
            message = _result_message(data.get("res") or {})
            self.failures.append(TaskFailure(host, task, message, unreachable=True))
            self._print(f"   {host}: UNREACHABLE: {message}")
        elif kind == "runner_item_on_failed":
            self._print(f"   {host}: item failed: {_result_message(data.get('res') or {})}")
        elif kind == "playbook_on_stats":
            self.stats = data
        return True


def _result_message(result: Mapping[str, Any]) -> str:
    if result.get("censored"):
        return "(output hidden: no_log task)"
    message = result.get("msg") or result.get("stderr") or result.get("reason") or ""
    if isinstance(message, list):
        message = " ".join(str(m) for m in message)
    text = " ".join(str(message).split())
    return text[:600] or "failed (no message)"


def _host_stats(stats: Mapping[str, Any]) -> dict[str, HostStats]:
    keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped",
            "rescued": "rescued", "ignored": "ignored"}
    hosts: dict[str, HostStats] = {}
    for source, target in keys.items():
        for host, count in (stats.get(source) or {}).items():
            setattr(hosts.setdefault(host, HostStats()), target, int(count))
    return hosts


def run_harden(
    inventory: Path,
    *,
    limit: str | None = None,
    tags: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
    playbook: Path | None = None,
    catalog: Catalog | None = None,
    keep_artifacts: int = DEFAULT_KEEP_ARTIFACTS,
    use_mitogen: bool = True,
    stream: TextIO | None = None,
) -> HardenResult:
    """Run the hardening playbook against ``inventory`` and return per-host results.

    Raises :class:`ConfigError` on bad input (missing inventory, unknown tag) before anything runs,
    and :class:`SocleError` when Ansible could not run at all.
    """
    import ansible_runner  # heavy import, only when hardening really runs

    inventory_file = resolve_inventory(inventory)
    playbook = (playbook or paths.project_root() / DEFAULT_PLAYBOOK).resolve()
    if not playbook.is_file():
        raise ConfigError("playbook not found", file=playbook)
    if tags:
        check_tags(tags, playbook)
    hosts = inventory_hosts(inventory_file)
    if not hosts:
        raise ConfigError("the inventory names no host", file=inventory_file)

    variables = pssi_extravars(catalog or default_catalog())
    variables["ght_pki_dir"] = str(paths.state_dir() / "pki" / inventory_file.parent.name)
    variables.update(extra_vars or {})

    runner_dir = paths.state_dir() / "runner"
    (runner_dir / "tmp").mkdir(parents=True, exist_ok=True)
    settings, strategy = ansible_settings(max(5, len(hosts)), use_mitogen=use_mitogen)
    # ansible-runner looks ansible-playbook up on PATH: the one next to this interpreter comes first.
    settings["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    cmdline = " ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted)
    printer = ProgressPrinter(stream)

    started = time.monotonic()
    with scrubbed_environment():
        runner = ansible_runner.run(
            private_data_dir=str(runner_dir),
            playbook=str(playbook),
            inventory=str(inventory_file),
            # The lab PKI play runs on the controller: keep it in any --limit.
            limit=f"{limit},localhost" if limit else None,
            tags=",".join(tags) or None,
            cmdline=cmdline or None,
            extravars=variables,
            envvars=settings,
            rotate_artifacts=keep_artifacts,
            suppress_env_files=True,
            quiet=True,
            event_handler=printer,
        )
    duration = time.monotonic() - started

    stats = printer.stats or runner.stats or {}
    result = HardenResult(
        status=str(runner.status),
        rc=int(runner.rc or 0),
        duration_s=duration,
        artifact_dir=Path(runner.config.artifact_dir),
        hosts=_host_stats(stats),
        failures=printer.failures,
        check_mode=check,
        strategy=strategy,
    )
    if not result.hosts and runner.status != "successful":
        stderr_tail = _tail(result.artifact_dir / "stdout", 6)
        raise SocleError(f"ansible-playbook could not run (status {runner.status}, rc {runner.rc}): {stderr_tail}",
                         file=result.artifact_dir)
    return result


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no output"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "no output"
