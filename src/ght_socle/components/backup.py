"""``ght:backup:BackupTier``: where backups go, how long they stay, and the copy OpenStack cannot hold.

Three copies, two media, one off site (3-2-1):

1. a **repository volume** (encrypted type) on each backup server, in the ``backup`` zone;
2. a private, versioned **object container** in an allowed region;
3. a second private, versioned container in **another allowed region** (the backup servers copy
   the repository there: Swift container sync needs a cloud-side realm, so it is not assumed).

The **offline or immutable copy** (PSSI BCK-003) has no OpenStack resource: removable media in a
safe, or an object-lock bucket administered outside the production accounts. It is declared as
data on this component (its inputs in the plan, so policies see it) and in the stack outputs, with
what the operator must provide. Retention per backup policy is exported for the backup role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from ght_socle.components.base import GhtComponent
from ght_socle.components.compute import HdsVm
from ght_socle.config.model import BackupPolicy, BackupTiers
from ght_socle.config.outputs import backup_tiers, retention


@dataclass
class BackupServer:
    vm: HdsVm
    hostname: str
    metadata: Mapping[str, str]
    availability_zone: str | None = None


@dataclass
class BackupTierArgs:
    environment: str
    ght_name: str
    servers: list[BackupServer]
    tiers: BackupTiers
    policies: Mapping[str, BackupPolicy]


class BackupTier(GhtComponent):
    TYPE = "ght:backup:BackupTier"

    def __init__(self, name: str, args: BackupTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        tiers = args.tiers
        props = {
            "environment": args.environment,
            "servers": [s.hostname for s in args.servers],
            "policies": retention(args.policies),
            **backup_tiers(tiers),
        }
        super().__init__(self.TYPE, name, props, opts)
        self.repositories: dict[str, openstack.blockstorage.Volume] = {}
        for server in args.servers:
            metadata = {**server.metadata, "purpose": "backup-repository", "data_class": "hds"}
            volume = openstack.blockstorage.Volume(
                **self.named(f"{server.hostname}-repository"), name=f"{server.hostname}-repository",
                size=tiers.repository.volume_size, volume_type=tiers.repository.volume_type,
                availability_zone=server.availability_zone, metadata=metadata)
            openstack.compute.VolumeAttach(**self.named(f"{server.hostname}-repository-attach"),
                                           instance_id=server.vm.instance.id, volume_id=volume.id)
            self.repositories[server.hostname] = volume
        prefix = f"{tiers.object_storage.container_prefix}-{args.environment}"
        copies = {"primary": tiers.object_storage.region, "offsite": tiers.object_storage.offsite_region}
        self.containers: dict[str, openstack.objectstorage.Container] = {}
        for copy, region in copies.items():
            # No container_read/container_write ACL: private to the project (PSSI STO-002).
            self.containers[copy] = openstack.objectstorage.Container(
                **self.named(f"backup-container-{copy}"), name=f"{prefix}-{copy}", region=region, versioning=True,
                metadata={"data_class": "hds", "purpose": f"backup-{copy}", "ght": args.ght_name,
                          "copy_of": "" if copy == "primary" else f"{prefix}-primary"})
        self.register_outputs({"containers": {copy: c.name for copy, c in self.containers.items()},
                               "offline": props["offline"], "policies": props["policies"]})
