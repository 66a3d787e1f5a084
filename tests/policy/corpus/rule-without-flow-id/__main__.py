"""An HTTPS rule added by hand, outside the flow matrix: its description names no flow (NET-010)."""
import pulumi_openstack as openstack

group = openstack.networking.SecGroup("intranet", name="intranet", delete_default_rules=True,
                                      tags=["zone=nonhds"])
openstack.networking.SecGroupRule(
    "https-in", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
    port_range_min=443, port_range_max=443, remote_ip_prefix="10.40.6.0/24", description="quick fix for the intranet")
