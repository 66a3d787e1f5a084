"""The lab's network: one L2 segment per zone inside a network namespace the lab owns.

Layout (as in production, each zone is its own segment and zones meet only at a router):

* a namespace ``ghtlab-<8 hex>`` (derived from the state directory, so two labs coexist);
* inside it one Linux bridge per zone, carrying the zone gateway (first address of the CIDR): the
  namespace is the lab's router between zones;
* nftables in the namespace: ``forward`` drops by default and accepts only the flows the stack's
  security groups declare (see :mod:`ght_socle.lab.fleet`), plus replies; ``input`` drops everything
  addressed to the router itself. Traffic inside one zone is switched by the bridge and not
  filtered (in production the per-port security groups also filter it; the roles' host firewall
  covers that in the lab);
* each VM zone NIC is a TAP opened by this process in the host namespace, moved into the lab
  namespace and enslaved to its zone bridge, and handed to QEMU as a file descriptor: the TAP
  lives exactly as long as the QEMU process that holds it.

Nothing in the namespace is routed to the outside: VMs reach Debian's registry through their own
user-mode NAT NIC, never through the lab router.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
from pathlib import Path

from ght_socle.errors import SocleError
from ght_socle.lab.fleet import Fleet, Flow
from ght_socle.lab.tools import require_tools, run

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000


def lab_id(state: Path) -> str:
    """8 hex digits naming this lab's namespace and devices, derived from its state directory."""
    return hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:8]


def namespace_name(state: Path) -> str:
    return f"ghtlab-{lab_id(state)}"


def bridge_name(index: int) -> str:
    return f"brz{index}"


def namespace_exists(namespace: str) -> bool:
    return Path("/run/netns", namespace).exists()


def _ns(namespace: str, *command: str, what: str) -> None:
    run(["ip", "netns", "exec", namespace, *command], what=what)


def create_network(namespace: str, fleet: Fleet) -> dict[str, str]:
    """Create the namespace, one bridge per zone and the firewall; return zone -> bridge name."""
    require_tools("ip", "nft")
    if os.geteuid() != 0:
        raise SocleError("the lab network (namespace, bridges, TAPs) needs root", where="lab")
    if not namespace_exists(namespace):
        run(["ip", "netns", "add", namespace], what=f"create network namespace {namespace}")
    bridges: dict[str, str] = {}
    existing = _links(namespace)
    for index, zone in enumerate(sorted(fleet.zones.values(), key=lambda z: z.name)):
        bridge = bridge_name(index)
        bridges[zone.name] = bridge
        if bridge not in existing:
            # A fixed address: a guest resumed from a saved state still has the gateway in its ARP cache.
            run(["ip", "-n", namespace, "link", "add", bridge, "address", f"52:54:00:6d:00:{index:02x}",
                 "type", "bridge"], what=f"create bridge {bridge}")
            run(["ip", "-n", namespace, "link", "set", bridge, "alias", f"zone {zone.name}"],
                what=f"name bridge {bridge}")
            run(["ip", "-n", namespace, "addr", "add", f"{zone.gateway}/{zone.cidr.prefixlen}", "dev", bridge],
                what=f"address bridge {bridge}")
        run(["ip", "-n", namespace, "link", "set", bridge, "up"], what=f"bring up bridge {bridge}")
    run(["ip", "-n", namespace, "link", "set", "lo", "up"], what="bring up loopback in the lab namespace")
    _ns(namespace, "sysctl", "-qw", "net.ipv4.ip_forward=1", what="enable routing in the lab namespace")
    # If br_netfilter is loaded, bridged frames would cross the routed forward chain too: the
    # bridge must switch a zone's own traffic, so keep the IP filter off the bridge path.
    bridge_nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if bridge_nf.exists():
        _ns(namespace, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0",
            what="keep bridged traffic out of the routed filter")
    run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], what="load the lab firewall",
        input_text=firewall_ruleset(fleet))
    return bridges


def _links(namespace: str) -> set[str]:
    listing = run(["ip", "-n", namespace, "-j", "link", "show"], what="list lab links")
    return {str(link.get("ifname")) for link in json.loads(listing.stdout or "[]")}


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'").replace("\\", "/")[:120] + '"'


def _flow_rule(flow: Flow, lab_sources: list[str]) -> str:
    sources = [s for s in flow.sources if s not in ("0.0.0.0/0",)] or lab_sources
    parts = [f"ip saddr {{ {', '.join(sources)} }}", f"ip daddr {{ {', '.join(flow.destinations)} }}"]
    if flow.protocol in ("tcp", "udp"):
        if flow.port_min is not None:
            ports = str(flow.port_min) if flow.port_max in (None, flow.port_min) else f"{flow.port_min}-{flow.port_max}"
            parts.append(f"{flow.protocol} dport {ports}")
        else:
            parts.append(f"meta l4proto {flow.protocol}")
    elif flow.protocol == "icmp":
        parts.append("meta l4proto icmp")
    elif flow.protocol not in ("any", ""):
        parts.append(f"meta l4proto {flow.protocol}")
    return " ".join(parts) + f" accept comment {_quote(flow.description)}"


def firewall_ruleset(fleet: Fleet) -> str:
    """The namespace's nftables ruleset: default drop, the stack's flows accepted."""
    lab_sources = sorted(str(zone.cidr) for zone in fleet.zones.values())
    rules = [_flow_rule(flow, lab_sources) for flow in fleet.flows]
    body = "\n    ".join(rules)
    return (
        "table inet ghtlab\ndelete table inet ghtlab\n"
        "table inet ghtlab {\n"
        "  chain input {\n    type filter hook input priority 0; policy drop;\n"
        "    ct state established,related accept\n  }\n"
        "  chain forward {\n    type filter hook forward priority 0; policy drop;\n"
        "    ct state established,related accept\n"
        "    ct state invalid drop\n"
        f"    {body}\n  }}\n"
        "}\n"
    )


def open_tap(name: str, namespace: str, bridge: str) -> int:
    """Open a TAP ``name`` in the host namespace, move it into the lab namespace on ``bridge``; return its fd.

    The caller hands the fd to QEMU and closes its own copy: the TAP disappears with QEMU.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        run(["ip", "link", "set", name, "netns", namespace], what=f"move {name} into {namespace}")
        run(["ip", "-n", namespace, "link", "set", name, "master", bridge, "up"],
            what=f"attach {name} to {bridge}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def delete_network(namespace: str) -> None:
    """Remove the namespace (its bridges, firewall and any TAP left in it go with it)."""
    if namespace_exists(namespace):
        run(["ip", "netns", "delete", namespace], what=f"delete network namespace {namespace}", check=False)
