"""``ght:compute:HdsVm`` and ``ght:compute:RoleServers``: the machines of the base.

An ``HdsVm`` boots from a volume of an encrypted type built from an allow-listed image, has explicit
ports with fixed addresses in its zones carrying the zone's and the role's security groups, an
imported key pair and no ``admin_pass``. Instance and volumes carry the zoning metadata (``zone``,
``data_class``, ``tier``, ``owner``, ``backup_policy``, ``criticality``). A floating IP is only ever
attached to a ``dmz-in`` port (PSSI NET-005).

``RoleServers`` declares every host of one role and, for HA roles, an anti-affinity server group
whose members are spread over the availability zones (PSSI CMP-005).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_openstack as openstack

from ght_socle.components.base import GhtComponent, look_up
from ght_socle.components.cloudinit import UserDataArgs, render_user_data
from ght_socle.config.model import PUBLIC_ZONE, Role
from ght_socle.errors import ConfigError


@dataclass(frozen=True)
class VmMetadata:
    zone: str
    data_class: str
    tier: str
    owner: str
    backup_policy: str
    criticality: str
    role: str

    @classmethod
    def of_role(cls, role_name: str, role: Role) -> VmMetadata:
        return cls(zone=role.zone, data_class=role.data_class, tier=role.tier, owner=role.owner,
                   backup_policy=role.backup_policy, criticality=role.criticality, role=role_name)

    def as_dict(self, hostname: str) -> dict[str, str]:
        return {"zone": self.zone, "data_class": self.data_class, "tier": self.tier, "owner": self.owner,
                "backup_policy": self.backup_policy, "criticality": self.criticality, "role": self.role,
                "hostname": hostname}


@dataclass
class VmPort:
    zone: str
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    address: str
    security_group_ids: Sequence[pulumi.Input[str]]


@dataclass
class HdsVmArgs:
    hostname: str
    flavor: str
    # The flavor's id as the cloud answers the lookup of ``flavor``: a name the cloud does not know
    # fails the preview, not the deployment.
    flavor_id: pulumi.Input[str]
    image: str
    image_id: pulumi.Input[str]
    volume_size: int
    volume_type: str
    key_pair: pulumi.Input[str]
    metadata: VmMetadata
    ports: Sequence[VmPort]
    user_data: str
    data_volume_size: int = 0
    availability_zone: str | None = None
    server_group_id: pulumi.Input[str] | None = None
    floating_ip_pool: str | None = None  # external network name; only for a dmz-in port


class HdsVm(GhtComponent):
    TYPE = "ght:compute:HdsVm"

    def __init__(self, name: str, args: HdsVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, {"hostname": args.hostname, "zone": args.metadata.zone}, opts)
        metadata = args.metadata.as_dict(args.hostname)
        self.ports: dict[str, openstack.networking.Port] = {}
        for port in args.ports:
            self.ports[port.zone] = openstack.networking.Port(
                f"{name}-port-{port.zone}", name=f"{args.hostname}-{port.zone}", network_id=port.network_id,
                admin_state_up=True, port_security_enabled=True, security_group_ids=list(port.security_group_ids),
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=port.subnet_id, ip_address=port.address)],
                tags=[f"zone={port.zone}", f"host={args.hostname}"], opts=self.child())
        scheduler_hints = ([openstack.compute.InstanceSchedulerHintArgs(group=args.server_group_id)]
                           if args.server_group_id is not None else None)
        self.instance = openstack.compute.Instance(
            f"{name}-vm", name=args.hostname, flavor_id=args.flavor_id, image_name=args.image,
            key_pair=args.key_pair, availability_zone=args.availability_zone, config_drive=True,
            block_devices=[openstack.compute.InstanceBlockDeviceArgs(
                source_type="image", uuid=args.image_id, destination_type="volume", boot_index=0,
                volume_size=args.volume_size, volume_type=args.volume_type, delete_on_termination=False)],
            networks=[openstack.compute.InstanceNetworkArgs(port=p.id) for p in self.ports.values()],
            metadata=metadata, user_data=args.user_data, scheduler_hints=scheduler_hints,
            tags=[f"zone={args.metadata.zone}", f"role={args.metadata.role}"], opts=self.child())
        self.data_volume: openstack.blockstorage.Volume | None = None
        if args.data_volume_size:
            self.data_volume = self.attach_volume("data", args.data_volume_size, args.volume_type, metadata,
                                                  args.availability_zone)
        self.floating_ip: openstack.networking.FloatingIp | None = None
        if args.floating_ip_pool:
            if PUBLIC_ZONE not in self.ports:
                raise ConfigError(f"{args.hostname}: a floating IP needs a port in {PUBLIC_ZONE}")
            self.floating_ip = openstack.networking.FloatingIp(
                f"{name}-fip", pool=args.floating_ip_pool, port_id=self.ports[PUBLIC_ZONE].id,
                description=f"public address of {args.hostname}", tags=[f"zone={PUBLIC_ZONE}"], opts=self.child())
        self.register_outputs({"instance_id": self.instance.id,
                               "ports": {zone: p.id for zone, p in self.ports.items()}})

    def attach_volume(self, purpose: str, size: int, volume_type: str, metadata: Mapping[str, str],
                      availability_zone: str | None) -> openstack.blockstorage.Volume:
        """An extra volume of the instance, with the same zoning metadata."""
        name = self._name
        volume = openstack.blockstorage.Volume(
            f"{name}-vol-{purpose}", name=f"{metadata['hostname']}-{purpose}", size=size, volume_type=volume_type,
            availability_zone=availability_zone, metadata={**metadata, "purpose": purpose}, opts=self.child())
        openstack.compute.VolumeAttach(f"{name}-attach-{purpose}", instance_id=self.instance.id,
                                       volume_id=volume.id, opts=self.child())
        return volume


@dataclass
class HostSpec:
    """One host of a role, as the stack configuration derives it."""

    hostname: str
    addresses: Mapping[str, str]  # zone -> fixed address; the first is the host's own zone
    availability_zone: str | None = None


@dataclass
class RoleServersArgs:
    role: str
    hosts: Sequence[HostSpec]
    ha: bool
    flavor: str
    image: str
    volume_size: int
    volume_type: str
    metadata: VmMetadata
    key_pair: pulumi.Input[str]
    network_ids: Mapping[str, pulumi.Input[str]]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    security_groups: Mapping[str, Sequence[pulumi.Input[str]]]  # zone -> group ids for this role's ports
    user_data: UserDataArgs
    data_volume_size: int = 0
    floating_ip_pool: str | None = None
    extra_props: dict[str, object] = field(default_factory=dict)


def role_servers_props(args: RoleServersArgs) -> dict[str, object]:
    return {"role": args.role, "ha": args.ha, "hosts": [h.hostname for h in args.hosts], **args.extra_props}


class RoleServers(GhtComponent):
    """Every host of one role; HA roles get an anti-affinity server group."""

    TYPE = "ght:compute:RoleServers"

    def __init__(self, name: str, args: RoleServersArgs, opts: pulumi.ResourceOptions | None = None,
                 type_token: str | None = None) -> None:
        super().__init__(type_token or self.TYPE, name, role_servers_props(args), opts)
        self.server_group: openstack.compute.ServerGroup | None = None
        if args.ha:
            if len(args.hosts) < 2:
                raise ConfigError(f"role {args.role}: an HA role needs at least 2 instances")
            self.server_group = openstack.compute.ServerGroup(
                f"{name}-group", name=f"{name}-anti-affinity", policies="anti-affinity", opts=self.child())
        image = look_up("image", args.image, f"ght-socle:roles.{args.role}.image",
                        lambda: openstack.images.get_image(name=args.image, most_recent=True))
        flavor = look_up("flavor", args.flavor, f"ght-socle:roles.{args.role}.flavor",
                         lambda: openstack.compute.get_flavor(name=args.flavor))
        self.vms: dict[str, HdsVm] = {}
        for host in args.hosts:
            ports = [VmPort(zone=zone, network_id=args.network_ids[zone], subnet_id=args.subnet_ids[zone],
                            address=address, security_group_ids=args.security_groups[zone])
                     for zone, address in host.addresses.items()]
            user_data = render_user_data(UserDataArgs(**{**args.user_data.__dict__, "hostname": host.hostname}))
            self.vms[host.hostname] = HdsVm(host.hostname, HdsVmArgs(
                hostname=host.hostname, flavor=args.flavor, flavor_id=flavor.id, image=args.image, image_id=image.id,
                volume_size=args.volume_size, volume_type=args.volume_type, key_pair=args.key_pair,
                metadata=args.metadata, ports=ports, user_data=user_data, data_volume_size=args.data_volume_size,
                availability_zone=host.availability_zone,
                server_group_id=self.server_group.id if self.server_group is not None else None,
                floating_ip_pool=args.floating_ip_pool), opts=self.child())
        self.register_outputs({"hosts": list(self.vms)})


def admin_keypair(name: str, public_key: str, opts: pulumi.ResourceOptions | None = None) -> openstack.compute.Keypair:
    """The administrators' imported key pair: the cloud never generates (and stores) a private key."""
    return openstack.compute.Keypair(name, name=name, public_key=public_key, opts=opts)
