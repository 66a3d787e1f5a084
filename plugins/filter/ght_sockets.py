"""Listening-socket filter for the baseline role (PSSI OSH-004)."""

from __future__ import annotations

import ipaddress
from typing import Any


def ght_listening_spec(fields: list[str]) -> str:
    """``proto/port`` of one ``ss --listening --numeric --tcp --udp --no-header`` line, or '' on loopback.

    The fields are: Netid State Recv-Q Send-Q Local-Address:Port Peer-Address:Port [process].
    """
    if len(fields) < 5:
        return ""
    proto, local = fields[0], fields[4]
    address, _, port = local.rpartition(":")
    address = address.strip("[]").split("%", 1)[0]
    try:
        if address not in ("*", "") and ipaddress.ip_address(address).is_loopback:
            return ""
    except ValueError:
        pass
    return f"{proto}/{port}"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ght_listening_spec": ght_listening_spec}
