"""A versioned container with a public read ACL (STO-002)."""
import pulumi_openstack as openstack

openstack.objectstorage.Container("exports", name="exports", container_read=".r:*,.rlistings", versioning=True)
