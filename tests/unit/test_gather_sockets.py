"""The gather script's listening-socket section, run on this machine with real sockets.

A service listens for good; a short-lived client holds its UDP socket for a moment only. The
section keeps the sockets present in two snapshots, so a client that closes its socket between
them is not reported as an undeclared service (OSH-004 flapped on such a socket in the lab).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ght_socle.conform import gather_script


@pytest.fixture
def udp_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    try:
        yield sock
    finally:
        sock.close()


def ports(sockets: list[dict[str, str]]) -> set[str]:
    return {entry["port"] for entry in sockets if entry["proto"] == "udp"}


def test_a_socket_listening_in_both_snapshots_is_reported(udp_socket: socket.socket,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gather_script, "SOCKET_SNAPSHOT_GAP", 0.0)
    port = str(udp_socket.getsockname()[1])
    assert port in ports(gather_script.section_sockets())


def test_a_socket_closed_between_snapshots_is_not_reported(udp_socket: socket.socket,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    port = str(udp_socket.getsockname()[1])
    assert port in ports(list(gather_script.listening_sockets().values()))

    def client_exits(_seconds: float) -> None:
        udp_socket.close()

    monkeypatch.setattr(gather_script.time, "sleep", client_exits)
    assert port not in ports(gather_script.section_sockets())
