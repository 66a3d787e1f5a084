"""The stack outputs (docs/architecture.md "Stack outputs"), computed from the validated configuration.

Everything here is known before deployment (addresses are fixed by the configuration), so the
offline plan and ``pulumi stack output --json`` give the same document, and the inventory can be
built from either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ght_socle.config.model import TRANSIT_ZONE, BackupPolicy, BackupTiers
from ght_socle.config.validate import StackConfig


def retention(policies: Mapping[str, BackupPolicy]) -> dict[str, dict[str, Any]]:
    """Retention per backup policy, in the shape the backup role reads (``ght_backup_policies``)."""
    return {name: {"keep_daily": p.keep_daily, "keep_weekly": p.keep_weekly, "keep_monthly": p.keep_monthly,
                   "offsite": p.offsite} for name, p in policies.items()}


def backup_tiers(tiers: BackupTiers) -> dict[str, Any]:
    """The three backup tiers as data (``ght_backup_tiers`` for the backup role; read by the policies)."""
    return {
        "repository": {"volume_size": tiers.repository.volume_size, "volume_type": tiers.repository.volume_type},
        "object_storage": {"region": tiers.object_storage.region,
                           "offsite_region": tiers.object_storage.offsite_region,
                           "container_prefix": tiers.object_storage.container_prefix},
        "offline": offline_declaration(tiers),
    }


def offline_declaration(tiers: BackupTiers) -> dict[str, Any]:
    """The offline/immutable copy, declared as data: OpenStack has no resource for it (PSSI BCK-003)."""
    offline = tiers.offline
    return {"mode": offline.mode, "min_days": offline.min_days, "rotation": offline.rotation,
            "operator_provides": offline.operator_provides, "declared_only": True}


def host_outputs(config: StackConfig) -> dict[str, dict[str, Any]]:
    settings = config.settings
    bastions = {h.name for h in config.hosts_in_group("bastion")}
    jump = config.bastion.name
    hosts: dict[str, dict[str, Any]] = {}
    for host in config.hosts:
        role = settings.roles[host.role]
        is_bastion = host.name in bastions
        # Operators reach a bastion through transit; every other host is reached from the bastion.
        address = host.addresses.get(TRANSIT_ZONE, host.address) if is_bastion else host.address
        hosts[host.name] = {
            "role": host.role,
            "groups": list(host.groups),
            "zone": host.zone,
            "addresses": dict(host.addresses),
            "address": address,
            "tier": role.tier,
            "data_class": role.data_class,
            "criticality": role.criticality,
            "jump": None if is_bastion else jump,
            "ssh_user": settings.admin_user,
        }
    return hosts


def stack_outputs(config: StackConfig) -> dict[str, Any]:
    settings = config.settings
    return {
        "hosts": host_outputs(config),
        "bastion": config.bastion.name,
        "ght": {
            "name": settings.ght_name,
            "env": settings.environment,
            "dns_domain": settings.dns_domain,
            "admin_cidrs": config.admin_cidrs,
            "ntp_servers": config.ntp_servers,
            "log_collectors": config.log_collectors,
            "backup_servers": config.backup_servers,
            "backup_policies": retention(settings.backup_policies),
            "backup_tiers": backup_tiers(settings.backup),
            "apt_proxy": settings.apt_proxy,
            "apt_mirror": settings.apt_mirror,
        },
        "zones": {zone: str(network) for zone, network in config.zone_networks.items()},
    }
