"""NoCloud seeds: the stack's own user-data, with lab-made meta-data and network-config.

In production OpenStack hands cloud-init the user-data and the network through its metadata
service; in the lab the same user-data goes on a small ISO 9660 disk labelled ``cidata`` (the
NoCloud datasource), next to a network-config the lab writes: static zone addresses with routes to
the other lab zones through the zone gateway, and DHCP on the user-mode NAT NIC for the default
route (Debian's registry) and DNS.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from ght_socle.lab.fleet import Fleet, Host
from ght_socle.lab.tools import require_tools, run


def mac_address(vm_index: int, nic_index: int) -> str:
    """Stable MACs, 52:54:00:6c:<vm>:<nic>. The same in every lab: each lab's zones are segments of its
    own namespace, so labs never share a segment, and a VM's saved state fits any lab of the same plan."""
    return f"52:54:00:6c:{vm_index:02x}:{nic_index:02x}"


def network_config(host: Host, fleet: Fleet, zone_macs: list[str], nat_mac: str) -> dict[str, Any]:
    """cloud-init network-config v1 (rendered to ifupdown on Debian 12)."""
    attached = set(host.addresses)
    primary = fleet.zones[host.zone] if host.zone in fleet.zones else fleet.zones[next(iter(host.addresses))]
    interfaces: list[dict[str, Any]] = []
    for index, ((zone_name, address), mac) in enumerate(zip(host.addresses.items(), zone_macs, strict=True)):
        zone = fleet.zones[zone_name]
        subnet: dict[str, Any] = {"type": "static", "address": f"{address}/{zone.cidr.prefixlen}"}
        if zone_name == primary.name:
            # Other lab zones are reached through this zone's gateway, never through the NAT NIC.
            subnet["routes"] = [
                {"network": str(other.cidr.network_address), "netmask": str(other.cidr.netmask),
                 "gateway": str(primary.gateway)}
                for other in sorted(fleet.zones.values(), key=lambda z: z.name) if other.name not in attached
            ]
        interfaces.append({"type": "physical", "name": f"eth{index}", "mac_address": mac, "subnets": [subnet]})
    interfaces.append({"type": "physical", "name": f"eth{len(zone_macs)}", "mac_address": nat_mac,
                       "subnets": [{"type": "dhcp"}]})
    return {"version": 1, "config": interfaces}


def seed_documents(host: Host, netconf: dict[str, Any]) -> dict[str, str]:
    """The three NoCloud files of ``host``: what cloud-init sees of the plan (also a saved state's key)."""
    return {"user-data": host.user_data,
            "meta-data": yaml.safe_dump({"instance-id": f"ghtlab-{host.name}", "local-hostname": host.name}),
            "network-config": yaml.safe_dump(netconf, sort_keys=False)}


def write_seed(path: Path, host: Host, documents: dict[str, str]) -> None:
    """Write the NoCloud ISO for ``host`` at ``path``."""
    require_tools("genisoimage")
    with tempfile.TemporaryDirectory(prefix="ghtlab-seed-") as tmp:
        directory = Path(tmp)
        for name, text in documents.items():
            (directory / name).write_text(text)
        run(["genisoimage", "-quiet", "-output", path, "-volid", "cidata", "-joliet", "-rock",
             *(directory / name for name in documents)], what=f"build the NoCloud seed of {host.name}")


