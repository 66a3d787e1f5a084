"""``ght:network:ZonedNetwork``: the GHT's zoned network, its routers, security groups and VPNs.

What it declares, and why:

* one Neutron network and subnet per zone, tagged ``zone=<zone>`` (the zoning convention every
  policy and report reads);
* an **edge router** with the external gateway, serving only the DMZ zones and ``transit`` (where
  the hospital sites' IPsec tunnels land); an **internal router** without external gateway for
  every other zone, linked to the edge through a leg in ``transit`` and static routes. No HDS
  subnet can therefore sit behind an external gateway (PSSI NET-005);
* security groups per zone and per role, generated from the flow matrix: default rules deleted,
  one ingress rule on the destination and one egress rule on the source per flow and port, each
  rule's description starting with its flow id (PSSI NET-002, NET-006, NET-010). The project's
  "default" group is never used;
* VPNaaS: one IKEv2 / ESP policy pair (AES-256, SHA-256, PFS group 14) and one site connection per
  hospital site, pre-shared keys as Pulumi secrets (PSSI NET-008).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_openstack as openstack

from ght_socle.components.base import GhtComponent, look_up, slug
from ght_socle.config.model import EDGE_ZONES, TRANSIT_ZONE, Flow, Site, port_range

# Crypto of the site-to-site tunnels (PSSI NET-008; ANSSI IPsec recommendations).
IKE_VERSION = "v2"
ENCRYPTION = "aes-256"
INTEGRITY = "sha256"
PFS_GROUP = "group14"
INTERNET = "0.0.0.0/0"
# What an offline plan declares for a site whose key is not set yet (the real engine never sees it:
# the configuration refuses an unset key there). Distinct from any real value, and kept secret.
UNSET_PSK = "pre-shared-key-not-set"


@dataclass
class ZonedNetworkArgs:
    environment: str
    zones: Mapping[str, str]  # zone -> CIDR
    external_network: str  # name of the provider's external network
    roles: Mapping[str, str]  # role -> its zone; each role gets a security group
    flows: Mapping[str, Flow]
    admin_networks: Sequence[str] = field(default_factory=list)
    sites: Mapping[str, Site] = field(default_factory=dict)
    dns_nameservers: Sequence[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Remote:
    """The far end of a rule: a CIDR or another security group."""

    label: str
    cidr: str | None = None
    group: str | None = None  # key into the component's security groups


class ZonedNetwork(GhtComponent):
    TYPE = "ght:network:ZonedNetwork"

    def __init__(self, name: str, args: ZonedNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The flow matrix rides on the component's inputs, so the plan (and the policies) see it whole.
        props = {"environment": args.environment, "zones": dict(args.zones),
                 "flows": {flow_id: flow.model_dump() for flow_id, flow in args.flows.items()}}
        super().__init__(self.TYPE, name, props, opts)
        self.args = args
        self.networks: dict[str, openstack.networking.Network] = {}
        self.subnets: dict[str, openstack.networking.Subnet] = {}
        self.zone_cidrs = {zone: ipaddress.IPv4Network(cidr) for zone, cidr in args.zones.items()}
        for zone in args.zones:
            self._zone(zone)
        self.zone_groups: dict[str, openstack.networking.SecGroup] = {}
        self.role_groups: dict[str, openstack.networking.SecGroup] = {}
        self._security_groups()
        self._routers()
        self.vpn_connections: dict[str, openstack.vpnaas.SiteConnection] = {}
        if args.sites:
            self._vpn()
        self.register_outputs({
            "network_ids": {zone: net.id for zone, net in self.networks.items()},
            "subnet_ids": {zone: sub.id for zone, sub in self.subnets.items()},
        })

    # --- zones and routing ----------------------------------------------------------------------

    def _zone(self, zone: str) -> None:
        tags = [f"zone={zone}", f"env={self.args.environment}"]
        network = openstack.networking.Network(
            **self.named(f"net-{zone}"), name=f"{self.args.environment}-{zone}", admin_state_up=True,
            port_security_enabled=True, tags=tags)
        cidr = self.zone_cidrs[zone]
        subnet = openstack.networking.Subnet(
            **self.named(f"subnet-{zone}"), name=f"{self.args.environment}-{zone}", network_id=network.id,
            cidr=str(cidr), ip_version=4, gateway_ip=str(cidr.network_address + 1), enable_dhcp=True,
            dns_nameservers=list(self.args.dns_nameservers) or None, tags=tags)
        self.networks[zone] = network
        self.subnets[zone] = subnet

    def _routers(self) -> None:
        env = self.args.environment
        external = look_up("external network", self.args.external_network, "ght-socle:external_network",
                           lambda: openstack.networking.get_network(name=self.args.external_network))
        self.edge_router = openstack.networking.Router(
            **self.named("router-edge"), name=f"{env}-edge", admin_state_up=True, external_network_id=external.id,
            tags=["router=edge", f"env={env}"])
        self.internal_router = openstack.networking.Router(
            **self.named("router-internal"), name=f"{env}-internal", admin_state_up=True,
            tags=["router=internal", f"env={env}"])
        edge_zones = [z for z in self.zone_cidrs if z in EDGE_ZONES]
        internal_zones = [z for z in self.zone_cidrs if z not in EDGE_ZONES]
        edge_interfaces = [
            openstack.networking.RouterInterface(**self.named(f"router-edge-{zone}"), router_id=self.edge_router.id,
                                                 subnet_id=self.subnets[zone].id)
            for zone in edge_zones
        ]
        internal_interfaces = [
            openstack.networking.RouterInterface(**self.named(f"router-internal-{zone}"),
                                                 router_id=self.internal_router.id, subnet_id=self.subnets[zone].id)
            for zone in internal_zones
        ]
        # The internal router's leg in transit: the only link between the internal zones and the
        # edge. Neutron does not filter router ports; the transit group is set so that no port of
        # the stack ever falls back to the project's "default" group.
        transit = self.zone_cidrs[TRANSIT_ZONE]
        edge_leg, internal_leg = str(transit.network_address + 1), str(transit.network_address + 2)
        leg = openstack.networking.Port(
            **self.named("port-internal-router-transit"), name=f"{env}-internal-router-transit",
            network_id=self.networks[TRANSIT_ZONE].id, admin_state_up=True,
            description="internal router leg in transit",
            security_group_ids=[self.zone_groups[TRANSIT_ZONE].id],
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=self.subnets[TRANSIT_ZONE].id,
                                                            ip_address=internal_leg)],
            tags=[f"zone={TRANSIT_ZONE}", "purpose=router-leg"])
        internal_interfaces.append(openstack.networking.RouterInterface(
            **self.named("router-internal-transit"), router_id=self.internal_router.id, port_id=leg.id))
        # Internal zones reach the DMZ and the sites through the edge; the edge reaches them back
        # through the internal leg. No default route: nothing internal goes to the Internet.
        towards_edge = [str(self.zone_cidrs[z]) for z in edge_zones if z != TRANSIT_ZONE]
        towards_edge += [site.cidr for site in self.args.sites.values()]
        for cidr in towards_edge:
            openstack.networking.RouterRoute(
                **self.named(f"route-internal-{slug(cidr)}", depends_on=internal_interfaces + edge_interfaces),
                router_id=self.internal_router.id, destination_cidr=cidr, next_hop=edge_leg)
        for zone in internal_zones:
            openstack.networking.RouterRoute(
                **self.named(f"route-edge-{zone}", depends_on=internal_interfaces + edge_interfaces),
                router_id=self.edge_router.id, destination_cidr=str(self.zone_cidrs[zone]), next_hop=internal_leg)

    # --- security groups from the flow matrix ---------------------------------------------------

    def _group(self, key: str, description: str, tags: list[str]) -> openstack.networking.SecGroup:
        return openstack.networking.SecGroup(
            **self.named(f"sg-{key}"), name=f"{self.args.environment}-{key}", description=description,
            delete_default_rules=True, tags=tags)

    def _security_groups(self) -> None:
        for zone in self.zone_cidrs:
            self.zone_groups[zone] = self._group(f"zone-{zone}", f"Flows of every host in zone {zone}",
                                                 [f"zone={zone}", "scope=zone"])
        for role, zone in self.args.roles.items():
            self.role_groups[role] = self._group(f"role-{slug(role)}", f"Flows of role {role}",
                                                 [f"zone={zone}", f"role={role}", "scope=role"])
        for flow_id, flow in self.args.flows.items():
            self._flow_rules(flow_id, flow)

    def _group_of(self, endpoint: str) -> openstack.networking.SecGroup | None:
        if endpoint.startswith("role:"):
            return self.role_groups[endpoint[5:]]
        return self.zone_groups.get(endpoint)

    def _remotes(self, endpoint: str) -> list[_Remote]:
        if endpoint == "@internet":
            return [_Remote("internet", cidr=INTERNET)]
        if endpoint == "@sites":
            return [_Remote(f"site-{name}", cidr=site.cidr) for name, site in self.args.sites.items()]
        if endpoint == "@admin-networks":
            cidrs = [str(self.zone_cidrs["admin"]), *self.args.admin_networks]
            return [_Remote(f"admin-{slug(c)}", cidr=c) for c in dict.fromkeys(cidrs)]
        if endpoint.startswith("role:"):
            return [_Remote(f"role-{slug(endpoint[5:])}", group=endpoint[5:])]
        return [_Remote(f"zone-{endpoint}", cidr=str(self.zone_cidrs[endpoint]))]

    def _rule(self, name: str, group: openstack.networking.SecGroup, direction: str, flow_id: str, flow: Flow,
              port: int | str, remote: _Remote) -> None:
        low, high = port_range(port)
        remote_group = self.role_groups[remote.group].id if remote.group else None
        openstack.networking.SecGroupRule(
            **self.named(name, parent=group), security_group_id=group.id, direction=direction, ethertype="IPv4",
            protocol=flow.protocol, port_range_min=low, port_range_max=high, remote_ip_prefix=remote.cidr,
            remote_group_id=remote_group,
            description=f"{flow_id}: {flow.description}")

    def _flow_rules(self, flow_id: str, flow: Flow) -> None:
        fid = flow_id.lower()
        for source in flow.source:
            for destination in flow.destination:
                destination_group = self._group_of(destination)
                source_group = self._group_of(source)
                for port in flow.ports:
                    label = f"{flow.protocol}{port}"
                    if destination_group is not None:
                        for remote in self._remotes(source):
                            self._rule(f"{fid}-in-{slug(destination)}-{remote.label}-{label}",
                                       destination_group, "ingress", flow_id, flow, port, remote)
                    if source_group is not None:
                        for remote in self._remotes(destination):
                            self._rule(f"{fid}-out-{slug(source)}-{remote.label}-{label}",
                                       source_group, "egress", flow_id, flow, port, remote)

    # --- site-to-site VPN -----------------------------------------------------------------------

    def _vpn(self) -> None:
        env = self.args.environment
        ike = openstack.vpnaas.IkePolicy(
            **self.named("vpn-ike"), name=f"{env}-ike", ike_version=IKE_VERSION, encryption_algorithm=ENCRYPTION,
            auth_algorithm=INTEGRITY, pfs=PFS_GROUP, phase1_negotiation_mode="main")
        ipsec = openstack.vpnaas.IpSecPolicy(
            **self.named("vpn-ipsec"), name=f"{env}-ipsec", encryption_algorithm=ENCRYPTION, auth_algorithm=INTEGRITY,
            pfs=PFS_GROUP, transform_protocol="esp", encapsulation_mode="tunnel")
        service = openstack.vpnaas.Service(
            **self.named("vpn-service"), name=f"{env}-vpn", router_id=self.edge_router.id, admin_state_up=True)
        # Sites only reach the transit zone; gateway roles (bastion, interop, proxies) have a port there.
        local = openstack.vpnaas.EndpointGroup(
            **self.named("vpn-local"), name=f"{env}-vpn-local", type="subnet",
            endpoints=[self.subnets[TRANSIT_ZONE].id])
        for name, site in self.args.sites.items():
            peer = openstack.vpnaas.EndpointGroup(
                **self.named(f"vpn-peer-{name}"), name=f"{env}-vpn-{name}", type="cidr", endpoints=[site.cidr])
            self.vpn_connections[name] = openstack.vpnaas.SiteConnection(
                **self.named(f"vpn-site-{name}"), name=f"{env}-{name}", description=site.description or f"site {name}",
                psk=pulumi.Output.secret(site.psk or UNSET_PSK), peer_address=site.peer_address,
                peer_id=site.peer_address,
                ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id, vpnservice_id=service.id,
                local_ep_group_id=local.id, peer_ep_group_id=peer.id, admin_state_up=True, initiator="bi-directional",
                dpds=[openstack.vpnaas.SiteConnectionDpdArgs(action="restart", interval=30, timeout=120)])

    def security_groups_for(self, role: str, zone: str) -> list[pulumi.Output[str]]:
        """Security groups of a role's port in one zone: the zone's group and the role's group."""
        return [self.zone_groups[zone].id, self.role_groups[role].id]
