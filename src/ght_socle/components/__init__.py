"""Reusable Pulumi components of the GHT base (``ght:<module>:<Type>``), composed by ``stacks/``."""

from ght_socle.components.admin import Bastion
from ght_socle.components.backup import BackupServer, BackupTier, BackupTierArgs
from ght_socle.components.compute import (
    HdsVm,
    HdsVmArgs,
    HostSpec,
    RoleServers,
    RoleServersArgs,
    VmMetadata,
    admin_keypair,
)
from ght_socle.components.network import ZonedNetwork, ZonedNetworkArgs

__all__ = ["BackupServer", "BackupTier", "BackupTierArgs", "Bastion", "HdsVm", "HdsVmArgs", "HostSpec",
           "RoleServers", "RoleServersArgs", "VmMetadata", "ZonedNetwork", "ZonedNetworkArgs", "admin_keypair"]
