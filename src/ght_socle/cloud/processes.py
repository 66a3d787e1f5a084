"""Daemons started as plain processes and tracked by pid (the machine has no init system to ask).

Each daemon starts in its own session, so its pid is also its process group: stopping it signals
that group, which takes the workers it forked (uwsgi, eventlet ``workers``) with it. A pid is only
trusted together with the start time the kernel recorded for it, so a recycled pid is never
mistaken for the daemon, nor signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STOP_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Daemon:
    """A started daemon: its pid, the kernel's start time for that pid, and its log."""

    name: str
    pid: int
    start_ticks: int
    log: str
    port: int | None = None
    # Size of the log when the daemon started: what it wrote is after this offset.
    log_offset: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Daemon:
        return cls(**data)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(daemon: Daemon) -> bool:
    """Running, not a zombie, and the same process that was started (not a recycled pid)."""
    fields = _stat_fields(daemon.pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == daemon.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (the daemon and what it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def spawn(name: str, command: list[str], log: Path, env: dict[str, str] | None = None,
          port: int | None = None, cwd: Path | None = None) -> Daemon:
    """Start ``command`` detached in its own session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
                                   close_fds=True)
    ticks = start_ticks(process.pid)
    return Daemon(name=name, pid=process.pid, start_ticks=ticks if ticks is not None else -1, log=str(log),
                  port=port, log_offset=offset)


def stop(daemon: Daemon, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the daemon's process group, SIGKILL what is left after ``grace`` seconds."""
    if not is_alive(daemon) and not group_members(daemon.pid):
        return
    _signal_group(daemon.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(daemon.pid) and time.monotonic() < deadline:
        _reap(daemon.pid)
        time.sleep(0.2)
    if group_members(daemon.pid):
        _signal_group(daemon.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while group_members(daemon.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    _reap(daemon.pid)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _reap(pid: int) -> None:
    # When the daemon is our own child (started by this very command), collect its exit status.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def http_answers(url: str, timeout: float = 3.0, context: ssl.SSLContext | None = None) -> bool:
    """True when ``url`` gives any HTTP answer below 500 (300 version lists and 401 included).

    For an https URL, ``context`` says what to trust (the certificate is always verified).
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (from /proc/net/tcp, LISTEN state)."""
    return port in listening_ports()


def listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def rss_bytes(pgid: int) -> int:
    """Resident memory of every process of group ``pgid``."""
    total = 0
    for pid in group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
