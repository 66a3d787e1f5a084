"""A health-data volume on the provider's classic (unencrypted) type (STO-001)."""
import pulumi_openstack as openstack

openstack.blockstorage.Volume(
    "pacs-images", size=500, volume_type="classic",
    metadata={"zone": "hds-data", "data_class": "hds", "tier": "t1", "owner": "imagerie",
              "backup_policy": "daily-30d", "criticality": "important"})
