"""A floating IP on the database's port in hds-data (NET-005)."""
import pulumi_openstack as openstack

network = openstack.networking.Network("data", name="data", tags=["zone=hds-data"])
subnet = openstack.networking.Subnet("data", network_id=network.id, cidr="10.40.4.0/24", tags=["zone=hds-data"])
group = openstack.networking.SecGroup("db", name="db", delete_default_rules=True, tags=["zone=hds-data"])
port = openstack.networking.Port("db-port", network_id=network.id, security_group_ids=[group.id],
                                 fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)])
openstack.networking.FloatingIp("db-public", pool="Ext-Net", port_id=port.id)
