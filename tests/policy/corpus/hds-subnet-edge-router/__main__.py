"""The hds-data subnet attached to the edge router, which has an external gateway (NET-005)."""
import pulumi_openstack as openstack

external = openstack.networking.get_network_output(name="Ext-Net")
router = openstack.networking.Router("edge", name="edge", external_network_id=external.id)
network = openstack.networking.Network("data", name="data", tags=["zone=hds-data"])
subnet = openstack.networking.Subnet("data", network_id=network.id, cidr="10.40.4.0/24", tags=["zone=hds-data"])
openstack.networking.RouterInterface("edge-data", router_id=router.id, subnet_id=subnet.id)
