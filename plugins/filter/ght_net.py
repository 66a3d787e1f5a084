"""Address filters for the host_firewall role (standard library only: no netaddr on the controller)."""

from __future__ import annotations

import ipaddress
from typing import Any


def ip_in_any(address: str, networks: list[str]) -> bool:
    """True when ``address`` belongs to one of ``networks`` (CIDRs or single addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(str(network), strict=False):
                return True
        except ValueError:
            continue
    return False


def ip_family(networks: list[str], family: int) -> list[str]:
    """The entries of ``networks`` of IP version ``family`` (4 or 6), merged.

    nftables interval sets refuse overlapping elements (an address inside a listed network), so
    the list is collapsed: 10.40.1.0/24 and 10.40.1.10 give 10.40.1.0/24.
    """
    selected: list[Any] = []
    for network in networks:
        try:
            parsed = ipaddress.ip_network(str(network), strict=False)
        except ValueError:
            continue
        if parsed.version == family:
            selected.append(parsed)
    return [str(n) for n in ipaddress.collapse_addresses(selected)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ip_in_any": ip_in_any, "ip_family": ip_family}
