"""The GHT shared base, one stack per environment (``pulumi up --stack prod`` / ``socle plan --stack prod``).

Thin on purpose: the configuration is loaded and validated first (nothing is declared on a bad
key), then the library's components are composed and the outputs exported in the shape
docs/architecture.md "Stack outputs" describes.
"""

from __future__ import annotations

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
from ght_socle.config.outputs import stack_outputs
from ght_socle.errors import SocleError
from ght_socle.plan import running_offline

try:
    cfg = stack_config.from_pulumi()
except SocleError as error:
    if running_offline():
        raise  # socle plan reports it itself
    # Under the real CLI too, a bad stack config is one line naming the file and the key: no stack trace.
    raise pulumi.RunError(str(error)) from None
settings = cfg.settings
env = settings.environment

network = ZonedNetwork("ght-network", ZonedNetworkArgs(
    environment=env, zones={zone: str(net) for zone, net in cfg.zone_networks.items()},
    external_network=settings.external_network, roles={name: role.zone for name, role in settings.roles.items()},
    flows=settings.flows, admin_networks=settings.admin_networks, sites=settings.sites))

keypair = admin_keypair(f"{env}-{settings.admin_user}", settings.admin_ssh_keys[0])
user_data = UserDataArgs(
    hostname="", dns_domain=settings.dns_domain, admin_user=settings.admin_user,
    admin_groups=[settings.admin_group, settings.automation_group], automation_group=settings.automation_group,
    admin_keys=settings.admin_ssh_keys, apt_proxy=settings.apt_proxy, apt_mirror=settings.apt_mirror,
    ntp_servers=cfg.ntp_servers)

servers: dict[str, RoleServers] = {}
for role_name, role in settings.roles.items():
    hosts = cfg.hosts_of_role(role_name)
    zones = [role.zone, *role.extra_zones]
    args = RoleServersArgs(
        role=role_name, ha=role.ha, flavor=role.flavor, image=role.image, volume_size=role.volume_size,
        volume_type=role.volume_type, data_volume_size=role.data_volume_size, key_pair=keypair.name,
        hosts=[HostSpec(h.name, h.addresses, h.availability_zone) for h in hosts],
        metadata=VmMetadata.of_role(role_name, role),
        network_ids={z: network.networks[z].id for z in zones}, subnet_ids={z: network.subnets[z].id for z in zones},
        security_groups={z: network.security_groups_for(role_name, z) for z in zones},
        user_data=user_data, floating_ip_pool=settings.external_network if role.floating_ip else None)
    if "bastion" in hosts[0].groups:
        servers[role_name] = Bastion(f"role-{role_name}", args, settings.flows)
    else:
        servers[role_name] = RoleServers(f"role-{role_name}", args)

backup_servers = [
    BackupServer(vm=servers[h.role].vms[h.name], hostname=h.name, availability_zone=h.availability_zone,
                 metadata=VmMetadata.of_role(h.role, settings.roles[h.role]).as_dict(h.name))
    for h in cfg.hosts_in_group("backup_server")
]
BackupTier("ght-backup", BackupTierArgs(environment=env, ght_name=settings.ght_name, servers=backup_servers,
                                        tiers=settings.backup, policies=settings.backup_policies))

for key, value in stack_outputs(cfg).items():
    pulumi.export(key, value)
