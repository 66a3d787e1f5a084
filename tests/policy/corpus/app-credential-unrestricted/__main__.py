"""A CI application credential without expiry, allowed to create credentials itself (IAM-006)."""
import pulumi_openstack as openstack

openstack.identity.ApplicationCredential("ci", name="ci", unrestricted=True, roles=["member"])
