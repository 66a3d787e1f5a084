"""SSH open to the world on an application security group (NET-003, NET-004)."""
import pulumi_openstack as openstack

group = openstack.networking.SecGroup("app", name="app", delete_default_rules=True, tags=["zone=hds-app"])
openstack.networking.SecGroupRule(
    "ssh-from-anywhere", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
    port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0", description="FLOW-900 vendor support")
