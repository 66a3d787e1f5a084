"""Two components of every kind in one stack, built from the lab configuration.

A URN is the parent type chain plus the resource name: two components of one kind whose children
took bare names (``net-admin``) would declare two resources with one URN, which the real engine
refuses. Each copy uses its own host names, as every host of a stack has its own.
"""

import pulumi

from ght_socle import config as stack_config
from ght_socle.components import (
    BackupServer,
    BackupTier,
    BackupTierArgs,
    Bastion,
    HostSpec,
    RoleServers,
    RoleServersArgs,
    VmMetadata,
    ZonedNetwork,
    ZonedNetworkArgs,
    admin_keypair,
)
from ght_socle.components.cloudinit import UserDataArgs

cfg = stack_config.from_pulumi()
settings = cfg.settings
user_data = UserDataArgs(hostname="", dns_domain=settings.dns_domain, admin_user=settings.admin_user,
                         admin_groups=[settings.admin_group], automation_group=settings.automation_group,
                         admin_keys=settings.admin_ssh_keys)


def role_args(copy: str, role_name: str, network: ZonedNetwork, key_pair: pulumi.Input[str]) -> RoleServersArgs:
    role = settings.roles[role_name]
    zones = [role.zone, *role.extra_zones]
    return RoleServersArgs(
        role=role_name, ha=role.ha, flavor=role.flavor, image=role.image, volume_size=role.volume_size,
        volume_type=role.volume_type, key_pair=key_pair, metadata=VmMetadata.of_role(role_name, role),
        hosts=[HostSpec(f"{copy}-{h.name}", h.addresses, h.availability_zone) for h in cfg.hosts_of_role(role_name)],
        network_ids={z: network.networks[z].id for z in zones}, subnet_ids={z: network.subnets[z].id for z in zones},
        security_groups={z: network.security_groups_for(role_name, z) for z in zones}, user_data=user_data)


for copy in ("first", "second"):
    network = ZonedNetwork(f"{copy}-network", ZonedNetworkArgs(
        environment=settings.environment, zones={zone: str(net) for zone, net in cfg.zone_networks.items()},
        external_network=settings.external_network, roles={name: role.zone for name, role in settings.roles.items()},
        flows=settings.flows, admin_networks=settings.admin_networks, sites=settings.sites))
    keypair = admin_keypair(f"{copy}-admin", settings.admin_ssh_keys[0])
    Bastion(f"{copy}-bastion", role_args(copy, "bastion", network, keypair.name), settings.flows)
    RoleServers(f"{copy}-dpi-app", role_args(copy, "dpi_app", network, keypair.name))
    log_backup = RoleServers(f"{copy}-log-backup", role_args(copy, "log_backup", network, keypair.name))
    BackupTier(f"{copy}-backup", BackupTierArgs(
        environment=settings.environment, ght_name=settings.ght_name, tiers=settings.backup,
        policies=settings.backup_policies,
        servers=[BackupServer(vm=vm, hostname=hostname, metadata=VmMetadata.of_role(
            "log_backup", settings.roles["log_backup"]).as_dict(hostname)) for hostname, vm in log_backup.vms.items()]))
