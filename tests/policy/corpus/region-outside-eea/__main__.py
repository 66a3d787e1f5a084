"""A compliant network, but the stack targets a region outside the allow-list (LOC-001)."""
import pulumi_openstack as openstack

openstack.networking.Network("log", name="log", tags=["zone=log"])
