"""An hds-app group with an egress rule to 0.0.0.0/0 on HTTPS (NET-006)."""
import pulumi_openstack as openstack

group = openstack.networking.SecGroup("app", name="app", delete_default_rules=True, tags=["zone=hds-app"])
openstack.networking.SecGroupRule(
    "updates-anywhere", security_group_id=group.id, direction="egress", ethertype="IPv4", protocol="tcp",
    port_range_min=443, port_range_max=443, remote_ip_prefix="0.0.0.0/0", description="FLOW-910 updates")
