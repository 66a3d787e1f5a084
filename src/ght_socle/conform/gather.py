"""Gather every fact the rules need in ONE remote command per host, cached for the whole run.

Under emulation one SSH round trip costs about 2 s; a naive testinfra suite pays it per property.
Here the gather script (``gather_script.py``) is sent base64-encoded inside the command line of a
single ``ssh`` invocation (testinfra's backend, so host key checking and ``ssh_config`` apply as
is), runs as root through ``sudo -n`` and prints one JSON document.

The cache is shared by the xdist workers through a run directory: a per-host lock file makes the
first worker gather while the others wait and then read the JSON it wrote.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ght_socle.catalog import Catalog

# Files whose mode/owner the rules check (globs allowed).
STAT_PATHS = [
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/sudoers.d/*",
    "/etc/crontab", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d", "/etc/ssh/ssh_host_*_key",
    "/etc/ssh/ssh_host_*_key.pub", "/boot", "/boot/grub", "/boot/grub/grub.cfg", "/var/log/journal",
    "/var/lib/aide/aide.db", "/var/lib/aide/aide.db.gz", "/etc/nftables.conf", "/var/log/audit",
    "/root/.ssh", "/home/*/.ssh/id_*", "/root/.ssh/id_*", "/etc/security/faillock.conf",
    "/var/lib/apt/periodic/unattended-upgrades-stamp", "/var/lib/apt/periodic/upgrade-stamp",
    "/var/lib/apt/periodic/update-success-stamp", "/var/log/unattended-upgrades/unattended-upgrades.log",
    "/etc/crypttab", "/etc/ght-backup", "/etc/ght-backup/repository.pass",
    "/var/lib/ght-backup/repository-initialised", "/var/lib/ght-reverify", "/var/lib/ght-reverify/baseline.json",
    "/usr/local/lib/ght-socle/gather.py", "/usr/local/lib/ght-socle/ght-reverify",
]
# Configuration files whose content the rules parse (globs allowed).
READ_PATHS = [
    "/etc/sudoers", "/etc/sudoers.d/*", "/etc/login.defs", "/etc/profile", "/etc/profile.d/*", "/etc/bash.bashrc",
    "/etc/pam.d/common-password", "/etc/pam.d/common-auth", "/etc/pam.d/common-account",
    "/etc/pam.d/common-session", "/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d/*",
    "/etc/security/faillock.conf", "/etc/chrony/chrony.conf", "/etc/chrony/conf.d/*", "/etc/chrony/sources.d/*",
    "/etc/rsyslog.conf", "/etc/rsyslog.d/*", "/etc/systemd/journald.conf", "/etc/systemd/journald.conf.d/*",
    "/etc/apt/sources.list", "/etc/apt/sources.list.d/*", "/etc/apt/apt.conf.d/*", "/etc/apt/auth.conf.d/*",
    "/etc/modprobe.d/*", "/etc/default/grub", "/etc/logrotate.conf", "/etc/audit/auditd.conf",
    "/etc/audit/rules.d/*", "/etc/nftables.conf", "/etc/aide/aide.conf", "/etc/cron.daily/*",
    "/etc/systemd/system/*.timer", "/etc/systemd/system/*.service", "/etc/dconf/db/local.d/*",
    "/etc/dconf/db/local.d/locks/*", "/etc/firefox-esr/policies/policies.json", "/etc/firefox/policies/policies.json",
    "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/*", "/etc/crypttab", "/etc/os-release", "/etc/shells",
    "/etc/default/useradd", "/etc/environment", "/etc/security/pwhistory.conf", "/etc/logrotate.d/*",
    "/etc/tmpfiles.d/*", "/etc/popularity-contest.conf", "/etc/ght-backup/ght-backup.env",
    "/var/lib/ght-backup/last-backup", "/var/lib/ght-backup/last-restore-test",
    "/var/lib/ght-reverify/last-summary.json", "/etc/ght-pki/ca.crt",
]
# systemd units whose state the rules check.
UNITS = [
    "ssh.service", "auditd.service", "chrony.service", "rsyslog.service", "nftables.service",
    "unattended-upgrades.service", "apt-daily-upgrade.timer", "apt-daily.timer", "systemd-journald.service",
    "apparmor.service", "aide.timer", "dailyaidecheck.timer", "cron.service", "systemd-timesyncd.service",
    "ntp.service", "ntpsec.service", "postfix.service", "exim4.service", "avahi-daemon.service",
    "cups.service", "rpcbind.service", "ght-backup.timer", "ght-restore-test.timer", "logrotate.timer",
    "ght-reverify.timer",
]


def fact_request(catalog: Catalog) -> dict[str, Any]:
    """What the gather script collects: the fixed lists plus the paths named by rule parameters."""
    return request_for_params({rule_id: rule.params for rule_id, rule in catalog.effective.items()})


def request_for_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``fact_request`` from the rules' effective parameters (``ght_pssi_params`` in a play)."""
    stat_paths = list(STAT_PATHS)
    if "LOG-002" in params:
        stat_paths += list(params["LOG-002"].get("audit_watch_paths", []))
    if "LOG-006" in params:
        stat_paths.append(str(params["LOG-006"].get("collector_storage_dir", "/var/log/remote")))
    if "OSH-009" in params:
        stat_paths += list(params["OSH-009"].get("sensitive_file_modes", {}))
    list_dirs = ["/etc/sudoers.d", "/etc/apt/sources.list.d", "/var/backups/ght"]
    if "LOG-006" in params:
        list_dirs.append(str(params["LOG-006"].get("collector_storage_dir", "/var/log/remote")))
    modprobe = list(params["WKS-003"].get("blocked_kernel_modules", [])) if "WKS-003" in params else []
    return {
        "stat": sorted(set(stat_paths)),
        "read": READ_PATHS,
        "units": UNITS,
        "list_dirs": list_dirs,
        "modprobe": modprobe,
        "sha256": [],
    }


def gather_script(request: dict[str, Any]) -> str:
    script = resources.files("ght_socle.conform").joinpath("gather_script.py").read_text(encoding="utf-8")
    return f"REQUEST = {json.dumps(request, sort_keys=True)}\n" + script


def remote_command(request: dict[str, Any]) -> str:
    """The one shell command run on the host: decode the script and run it as root, password-less."""
    encoded = base64.b64encode(gather_script(request).encode("utf-8")).decode("ascii")
    # `sudo -n` fails at once instead of waiting for a password nobody will type.
    return (f"echo {encoded} | base64 -d | "
            f"if [ \"$(id -u)\" = 0 ]; then python3 -; else sudo -n python3 -; fi")


TRANSPORT_ATTEMPTS = 2
RETRY_DELAY_SECONDS = 3.0


class GatherError(Exception):
    """The facts of a host could not be gathered: unreachable, sudo refused, script failure."""


def parse_output(host: str, rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    if rc != 0:
        detail = (stderr.strip().splitlines() or [f"exit status {rc}"])[-1]
        if "password is required" in stderr or "sudo:" in stderr:
            raise GatherError(f"{host}: sudo refused (password-less sudo is needed for the audit): {detail}")
        raise GatherError(f"{host}: fact gathering failed (exit {rc}): {detail}")
    try:
        facts = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise GatherError(f"{host}: fact gathering printed no JSON ({exc.msg})") from None
    if not isinstance(facts, dict) or facts.get("format") != 1:
        raise GatherError(f"{host}: unexpected fact document")
    return facts


RunCommand = Callable[[str], tuple[int, str, str]]


class FactCache:
    """Facts per host for one run: in memory per process, on disk for the other xdist workers."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self._memory: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, str] = {}

    def _paths(self, host: str) -> tuple[Path, Path, Path]:
        assert self.run_dir is not None
        return (self.run_dir / f"facts-{host}.json", self.run_dir / f"facts-{host}.lock",
                self.run_dir / f"facts-{host}.error")

    def get(self, host: str, run_command: RunCommand, command: str) -> dict[str, Any]:
        if host in self._memory:
            return self._memory[host]
        if host in self._failures:
            raise GatherError(self._failures[host])
        if self.run_dir is None:
            return self._store(host, self._gather(host, run_command, command))
        facts_path, lock_path, error_path = self._paths(host)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if facts_path.exists():
                return self._store(host, json.loads(facts_path.read_text(encoding="utf-8")))
            if error_path.exists():
                message = error_path.read_text(encoding="utf-8")
                self._failures[host] = message
                raise GatherError(message)
            try:
                facts = self._gather(host, run_command, command)
            except GatherError as exc:
                error_path.write_text(str(exc), encoding="utf-8")
                self._failures[host] = str(exc)
                raise
            tmp = facts_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(facts), encoding="utf-8")
            os.replace(tmp, facts_path)
            return self._store(host, facts)

    def _store(self, host: str, facts: dict[str, Any]) -> dict[str, Any]:
        self._memory[host] = facts
        return facts

    def _gather(self, host: str, run_command: RunCommand, command: str) -> dict[str, Any]:
        # The gather only reads, so a transport failure is retried once: a bastion under load drops
        # unauthenticated connections beyond sshd's MaxStartups, and that says nothing of the host.
        for attempt in range(1, TRANSPORT_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                rc, stdout, stderr = run_command(command)
            except GatherError:
                raise
            except Exception as exc:  # transport failures come in many types (RuntimeError, OSError, paramiko...)
                if attempt < TRANSPORT_ATTEMPTS:
                    time.sleep(RETRY_DELAY_SECONDS)
                    continue
                raise GatherError(f"{host}: unreachable: {_transport_message(exc)}") from None
            finally:
                self._log_command(host, time.monotonic() - started)
            facts = parse_output(host, rc, stdout, stderr)
            facts["_controller"] = {"round_trip_seconds": round(time.monotonic() - started, 3),
                                    "remote_commands": attempt}
            return facts
        raise RuntimeError("TRANSPORT_ATTEMPTS must be at least 1")

    def _log_command(self, host: str, seconds: float) -> None:
        """One line per remote command: the benchmark counts SSH round trips per host from it."""
        if self.run_dir is None:
            return
        with open(self.run_dir / "remote-commands.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps({"host": host, "seconds": round(seconds, 3)}) + "\n")


def _transport_message(exc: BaseException) -> str:
    # testinfra's ssh backend raises RuntimeError(CommandResult) on exit status 255.
    result = exc.args[0] if exc.args else None
    stderr = getattr(result, "stderr", None)
    if isinstance(stderr, str) and stderr.strip():
        return stderr.strip().splitlines()[-1]
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def count_remote_commands(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    log = run_dir / "remote-commands.jsonl"
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            host = json.loads(line)["host"]
            counts[host] = counts.get(host, 0) + 1
    return counts
