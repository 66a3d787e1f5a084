"""An instance declared with admin_pass (CMP-002)."""
import pulumi_openstack as openstack

network = openstack.networking.Network("office", name="office", tags=["zone=nonhds"])
openstack.networking.SecGroup("office", name="office", delete_default_rules=True, tags=["zone=nonhds"])
openstack.compute.Instance(
    "hr-app", image_name="debian-12-ght-golden", flavor_name="b3-8", security_groups=["office"],
    admin_pass="Rh-Admin-2024", networks=[openstack.compute.InstanceNetworkArgs(uuid=network.id)],
    metadata={"zone": "nonhds", "data_class": "nonhds", "tier": "t2", "owner": "drh",
              "backup_policy": "daily-30d", "criticality": "standard"})
