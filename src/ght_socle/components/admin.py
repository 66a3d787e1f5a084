"""``ght:admin:Bastion``: the single SSH entry into the base.

The bastion lives in the ``admin`` zone and has a second port in ``transit``, where the GHT admin
networks arrive through the sites' IPsec tunnels; the flow matrix opens SSH to it from those
networks only. It never has a floating IP and no flow may reach it from the Internet (PSSI
ADM-001, ADM-002, NET-004).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from ght_socle.components.compute import RoleServers, RoleServersArgs
from ght_socle.config.model import ADMIN_ZONE, TRANSIT_ZONE, Flow
from ght_socle.errors import ConfigError


class Bastion(RoleServers):
    TYPE = "ght:admin:Bastion"

    def __init__(self, name: str, args: RoleServersArgs, flows: Mapping[str, Flow],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        for host in args.hosts:
            zones = list(host.addresses)
            if not zones or zones[0] != ADMIN_ZONE:
                raise ConfigError(f"bastion {host.hostname} must live in the {ADMIN_ZONE} zone")
            if TRANSIT_ZONE not in zones:
                raise ConfigError(f"bastion {host.hostname} needs a port in {TRANSIT_ZONE} "
                                  "(extra_zones: [transit]) to be reachable from the GHT admin networks")
        if args.floating_ip_pool:
            raise ConfigError(f"role {args.role}: the bastion never gets a floating IP")
        for flow_id, flow in flows.items():
            reached = set(flow.destination) & {f"role:{args.role}", ADMIN_ZONE, TRANSIT_ZONE}
            if "@internet" in flow.source and reached:
                raise ConfigError(f"flow {flow_id} opens the bastion's zones to the Internet")
        super().__init__(name, args, opts, type_token=self.TYPE)
