"""An instance relying on the project's "default" security group (NET-002)."""
import pulumi_openstack as openstack

network = openstack.networking.Network("office", name="office", tags=["zone=nonhds"])
openstack.compute.Instance(
    "wiki", image_name="debian-12-ght-golden", flavor_name="b3-8", security_groups=["default"],
    networks=[openstack.compute.InstanceNetworkArgs(uuid=network.id)],
    metadata={"zone": "nonhds", "data_class": "nonhds", "tier": "t2", "owner": "dsi",
              "backup_policy": "daily-30d", "criticality": "standard"})
