"""cloud-init user-data carrying a password and a private key (CMP-002)."""
import pulumi_openstack as openstack

USER_DATA = """#cloud-config
users:
  - name: support
    plain_text_passwd: Hopital2024!
write_files:
  - path: /root/.ssh/id_ed25519
    content: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
      -----END OPENSSH PRIVATE KEY-----
"""

network = openstack.networking.Network("office", name="office", tags=["zone=nonhds"])
group = openstack.networking.SecGroup("office", name="office", delete_default_rules=True, tags=["zone=nonhds"])
openstack.compute.Instance(
    "intranet", image_name="debian-12-ght-golden", flavor_name="b3-8", security_groups=["office"],
    networks=[openstack.compute.InstanceNetworkArgs(uuid=network.id)], user_data=USER_DATA,
    metadata={"zone": "nonhds", "data_class": "nonhds", "tier": "t2", "owner": "communication",
              "backup_policy": "daily-30d", "criticality": "standard"})
