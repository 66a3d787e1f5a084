"""A compliant dmz-in reverse proxy: HTTPS from the Internet, a floating IP on its dmz-in port."""
import pulumi_openstack as openstack

network = openstack.networking.Network("dmz", name="dmz", tags=["zone=dmz-in"])
subnet = openstack.networking.Subnet("dmz", network_id=network.id, cidr="10.40.10.0/24", tags=["zone=dmz-in"])
group = openstack.networking.SecGroup("proxy", name="proxy", delete_default_rules=True, tags=["zone=dmz-in"])
openstack.networking.SecGroupRule(
    "https-in", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
    port_range_min=443, port_range_max=443, remote_ip_prefix="0.0.0.0/0", description="FLOW-001 portal")
port = openstack.networking.Port("proxy-port", network_id=network.id, security_group_ids=[group.id],
                                 fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)])
openstack.networking.FloatingIp("proxy-public", pool="Ext-Net", port_id=port.id)
openstack.compute.Instance(
    "proxy", image_name="debian-12-ght-golden", flavor_name="b3-8",
    networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
    metadata={"zone": "dmz-in", "data_class": "nonhds", "tier": "t1", "owner": "dsi",
              "backup_policy": "daily-30d", "criticality": "standard"})
