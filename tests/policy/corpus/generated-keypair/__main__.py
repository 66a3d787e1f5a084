"""A key pair without public_key: the cloud generates the private key and the state keeps it (CMP-006)."""
import pulumi_openstack as openstack

openstack.compute.Keypair("deploy", name="deploy")
