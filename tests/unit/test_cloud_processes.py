"""Daemons of the local cloud are tracked by pid and start time, and stopped with everything they forked."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

from ght_socle.cloud import processes


def test_stop_takes_the_forked_children_with_the_daemon(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "sleeper.log"
    daemon = processes.spawn("sleeper", ["sh", "-c", "echo started; sleep 60 & sleep 60"], log)
    try:
        assert processes.is_alive(daemon)
        for _ in range(50):
            if len(processes.group_members(daemon.pid)) >= 2:
                break
            time.sleep(0.1)
        assert len(processes.group_members(daemon.pid)) >= 2
    finally:
        processes.stop(daemon, grace=5)
    assert processes.group_members(daemon.pid) == []
    assert not processes.is_alive(daemon)
    assert log.read_text().startswith("started")


def test_a_recycled_pid_is_not_the_daemon(tmp_path: Path) -> None:
    daemon = processes.spawn("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    try:
        impostor = dataclasses.replace(daemon, start_ticks=daemon.start_ticks - 1)
        assert processes.is_alive(daemon)
        assert not processes.is_alive(impostor)
    finally:
        processes.stop(daemon, grace=5)


def test_listening_ports_and_http_probe_see_the_real_sockets() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert processes.port_in_use(port)
    assert not processes.port_in_use(port)
    assert not processes.http_answers(f"http://127.0.0.1:{port}/", timeout=1)
