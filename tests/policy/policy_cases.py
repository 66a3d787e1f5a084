"""Violating and compliant fixtures for every policy: (policy, label, plan, violates)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policy_builders import (
    FULL_METADATA,
    instance,
    network,
    plan,
    port,
    ref,
    res,
    rule,
    secgroup,
    subnet,
)

from ght_socle.plan_model import Plan
from ght_socle.policy import helpers as t


@dataclass(frozen=True)
class Case:
    policy: str
    label: str
    plan: Plan
    violates: bool


CASES: list[Case] = []


def bad(policy: str, label: str, fixture: Plan) -> None:
    CASES.append(Case(policy, label, fixture, True))


def good(policy: str, label: str, fixture: Plan) -> None:
    CASES.append(Case(policy, label, fixture, False))


ADMIN_SUBNET = subnet("admin-subnet", "admin", "10.40.1.0/24")
BACKUP_OUTPUTS = {"ght": {"backup_policies": {"daily-30d": {"keep_daily": 30, "offsite": True}},
                          "backup_tiers": {"offline": {"mode": "immutable", "min_days": 30},
                                           "object_storage": {"region": "eu-fr-1", "offsite_region": "eu-fr-2"}}}}
NOW = datetime.now(UTC)

# --- NET ----------------------------------------------------------------------------------------------
bad("net-zone-tag", "network without zone tag", plan(res(t.NETWORK, "n", name="n")))
bad("net-zone-tag", "zone outside the list", plan(network("n", "internet")))
bad("net-zone-tag", "two zone tags", plan(res(t.SUBNET, "s", cidr="10.0.0.0/24", tags=["zone=admin", "zone=log"])))
good("net-zone-tag", "one known zone", plan(network("n", "hds-app"), subnet("s", "hds-app", "10.0.0.0/24")))

bad("net-cidr-no-overlap", "nested ranges",
    plan(subnet("a", "hds-app", "10.0.0.0/24"), subnet("b", "hds-data", "10.0.0.128/25")))
bad("net-cidr-no-overlap", "same range", plan(subnet("a", "log", "10.9.0.0/24"), subnet("b", "admin", "10.9.0.0/24")))
good("net-cidr-no-overlap", "disjoint", plan(subnet("a", "hds-app", "10.0.0.0/24"), subnet("b", "log", "10.0.1.0/24")))

bad("net-no-default-secgroup", "default rules kept",
    plan(res(t.SECGROUP, "g", name="g", tags=["zone=hds-app"])))
bad("net-no-default-secgroup", "instance on default", plan(instance("vm", securityGroups=["default"])))
bad("net-no-default-secgroup", "instance without groups", plan(instance("vm", securityGroups=[])))
bad("net-no-default-secgroup", "port without groups", plan(res(t.PORT, "p", networkId=ref("n"))))
good("net-no-default-secgroup", "own groups", plan(secgroup("g", "hds-app"), instance("vm"), port("p", "n", ["g"])))

bad("net-no-world-ingress", "ssh from the world", plan(secgroup("g", "hds-app"), rule("r", "g", ports=(22, 22),
                                                                                        prefix="0.0.0.0/0")))
bad("net-no-world-ingress", "8080 from ::/0 in dmz-in",
    plan(secgroup("g", "dmz-in"), rule("r", "g", ports=(8080, 8080), prefix="::/0")))
bad("net-no-world-ingress", "no source at all", plan(secgroup("g", "hds-app"), rule("r", "g")))
bad("net-no-world-ingress", "https from the world outside dmz-in",
    plan(secgroup("g", "hds-app"), rule("r", "g", prefix="0.0.0.0/0")))
good("net-no-world-ingress", "https into dmz-in", plan(secgroup("g", "dmz-in"), rule("r", "g", prefix="0.0.0.0/0")))
good("net-no-world-ingress", "https from a zone",
     plan(secgroup("g", "hds-app"), rule("r", "g", prefix="10.40.10.0/24")))

bad("net-no-all-ports-rule", "no protocol", plan(rule("r", "g", protocol=None, ports=None, prefix="10.0.0.0/8")))
bad("net-no-all-ports-rule", "tcp without ports", plan(rule("r", "g", ports=None, prefix="10.0.0.0/8")))
bad("net-no-all-ports-rule", "full range", plan(rule("r", "g", ports=(1, 65535), remote="other")))
good("net-no-all-ports-rule", "one port", plan(rule("r", "g", prefix="10.0.0.0/8")))
good("net-no-all-ports-rule", "icmp", plan(rule("r", "g", protocol="icmp", ports=None, prefix="10.0.0.0/8")))
good("net-no-all-ports-rule", "egress all ports", plan(rule("r", "g", direction="egress", ports=None,
                                                            prefix="10.40.11.0/24")))

bad("net-admin-ports-from-admin-only", "ssh from a site range",
    plan(ADMIN_SUBNET, secgroup("g", "hds-app"), rule("r", "g", ports=(22, 22), prefix="10.99.0.0/16")))
bad("net-admin-ports-from-admin-only", "rdp from an application group",
    plan(secgroup("g", "hds-app"), secgroup("app", "hds-app"), rule("r", "g", ports=(3389, 3389), remote="app")))
bad("net-admin-ports-from-admin-only", "range covering vnc",
    plan(ADMIN_SUBNET, secgroup("g", "hds-app"), rule("r", "g", ports=(5000, 6000), prefix="10.50.0.0/24")))
bad("net-admin-ports-from-admin-only", "ssh from an undeclared group",
    plan(secgroup("g", "hds-app"), rule("r", "g", ports=(22, 22), remote="ghost")))
good("net-admin-ports-from-admin-only", "ssh from the admin subnet",
     plan(ADMIN_SUBNET, secgroup("g", "hds-app"), rule("r", "g", ports=(22, 22), prefix="10.40.1.0/24")))
good("net-admin-ports-from-admin-only", "ssh from the bastion group",
     plan(secgroup("g", "hds-app"), secgroup("bastion", "admin", "bastion"),
          rule("r", "g", ports=(22, 22), remote="bastion")))
good("net-admin-ports-from-admin-only", "ssh from declared admin networks",
     plan(secgroup("g", "hds-app"), rule("r", "g", ports=(22, 22), prefix="192.168.7.0/24"),
          outputs={"ght": {"admin_cidrs": ["192.168.7.0/24"]}}))
good("net-admin-ports-from-admin-only", "https only",
     plan(secgroup("g", "hds-app"), rule("r", "g", prefix="0.0.0.0/0")))

bad("net-floating-ip-dmz-only", "database port",
    plan(network("data-net", "hds-data"), port("db-port", "data-net"),
         res(t.FLOATING_IP, "fip", pool="Ext-Net", portId=ref("db-port"))))
bad("net-floating-ip-dmz-only", "association to an unknown port",
    plan(res(t.FLOATING_IP_ASSOCIATE, "assoc", floatingIp="1.2.3.4", portId="some-uuid")))
good("net-floating-ip-dmz-only", "reverse proxy port",
     plan(network("dmz-net", "dmz-in"), port("rp-port", "dmz-net"),
          res(t.FLOATING_IP, "fip", pool="Ext-Net", portId=ref("rp-port"))))
good("net-floating-ip-dmz-only", "unattached address", plan(res(t.FLOATING_IP, "fip", pool="Ext-Net")))

EDGE = res(t.ROUTER, "edge", externalNetworkId="ext-id")
bad("net-hds-subnet-no-external-router", "hds-data on the edge router",
    plan(EDGE, subnet("data", "hds-data", "10.40.4.0/24"),
         res(t.ROUTER_INTERFACE, "edge-data", routerId=ref("edge"), subnetId=ref("data"))))
good("net-hds-subnet-no-external-router", "hds-data on the internal router",
     plan(res(t.ROUTER, "core"), subnet("data", "hds-data", "10.40.4.0/24"),
          res(t.ROUTER_INTERFACE, "core-data", routerId=ref("core"), subnetId=ref("data"))))
good("net-hds-subnet-no-external-router", "dmz-in on the edge router",
     plan(EDGE, subnet("dmz", "dmz-in", "10.40.10.0/24"),
          res(t.ROUTER_INTERFACE, "edge-dmz", routerId=ref("edge"), subnetId=ref("dmz"))))

bad("net-no-open-egress", "hds-app to anywhere",
    plan(secgroup("g", "hds-app"), rule("r", "g", direction="egress", ports=None, prefix="0.0.0.0/0")))
bad("net-no-open-egress", "admin without destination",
    plan(secgroup("g", "admin"), rule("r", "g", direction="egress", ports=(443, 443))))
good("net-no-open-egress", "dmz-out relay", plan(secgroup("g", "dmz-out"),
                                                 rule("r", "g", direction="egress", prefix="0.0.0.0/0")))
good("net-no-open-egress", "to the relay zone", plan(secgroup("g", "hds-app"),
                                                     rule("r", "g", direction="egress", prefix="10.40.11.0/24")))

bad("net-no-lateral-any", "all ports to itself",
    plan(secgroup("g", "hds-data", "dpi_db"), rule("r", "g", protocol=None, ports=None, remote="g")))
good("net-no-lateral-any", "replication port to itself",
     plan(secgroup("g", "hds-data", "dpi_db"), rule("r", "g", ports=(5432, 5432), remote="g")))

IKE_GOOD = {"ikeVersion": "v2", "encryptionAlgorithm": "aes-256", "authAlgorithm": "sha256", "pfs": "group14"}
bad("net-vpn-ike-crypto", "provider defaults", plan(res(t.IKE_POLICY, "ike")))
bad("net-vpn-ike-crypto", "IKEv1", plan(res(t.IKE_POLICY, "ike", **{**IKE_GOOD, "ikeVersion": "v1"})))
bad("net-vpn-ike-crypto", "sha1", plan(res(t.IKE_POLICY, "ike", **{**IKE_GOOD, "authAlgorithm": "sha1"})))
good("net-vpn-ike-crypto", "floor met", plan(res(t.IKE_POLICY, "ike", **IKE_GOOD)))

IPSEC_GOOD = {"encryptionAlgorithm": "aes-256", "authAlgorithm": "sha384", "pfs": "group19", "transformProtocol": "esp"}
bad("net-vpn-ipsec-crypto", "aes-128", plan(res(t.IPSEC_POLICY, "ipsec",
                                                **{**IPSEC_GOOD, "encryptionAlgorithm": "aes-128"})))
bad("net-vpn-ipsec-crypto", "AH only", plan(res(t.IPSEC_POLICY, "ipsec", **{**IPSEC_GOOD, "transformProtocol": "ah"})))
bad("net-vpn-ipsec-crypto", "group5", plan(res(t.IPSEC_POLICY, "ipsec", **{**IPSEC_GOOD, "pfs": "group5"})))
good("net-vpn-ipsec-crypto", "floor met", plan(res(t.IPSEC_POLICY, "ipsec", **IPSEC_GOOD)))

bad("net-vpn-psk-secret", "plaintext psk", plan(res(t.SITE_CONNECTION, "vpn", psk="hunter2hunter2")))
good("net-vpn-psk-secret", "secret psk", plan(res(t.SITE_CONNECTION, "vpn", psk="x" * 20, secret={"psk"})))
good("net-vpn-psk-secret", "psk from secure config",
     plan(res(t.SITE_CONNECTION, "vpn", psk="offline-placeholder-0123456789abcdef01234567")))

bad("net-rule-has-flow-id", "no description", plan(res(t.SECGROUP_RULE, "r", direction="ingress")))
bad("net-rule-has-flow-id", "free text", plan(rule("r", "g", description="ssh from bastion")))
bad("net-rule-has-flow-id", "firewall rule", plan(res(t.FIREWALL_RULE, "fw", description="FLOW-1")))
good("net-rule-has-flow-id", "flow id", plan(rule("r", "g", description="FLOW-012 ssh from bastion")))

# --- ADM ----------------------------------------------------------------------------------------------
bad("adm-bastion-in-admin-zone", "bastion in an application zone", plan(instance("bastion-01", role="bastion")))
bad("adm-bastion-in-admin-zone", "hosts without bastion", plan(instance("app-01")))
good("adm-bastion-in-admin-zone", "bastion in admin", plan(instance("bastion-01", role="bastion", zone="admin"),
                                                            instance("app-01")))

# --- CMP ----------------------------------------------------------------------------------------------
bad("cmp-image-allowlist", "vendor image", plan(instance("vm", imageName="ubuntu-22.04")))
bad("cmp-image-allowlist", "image by id only", plan(instance("vm", imageName=None, imageId="c0ffee")))
good("cmp-image-allowlist", "golden image", plan(instance("vm")))

bad("cmp-no-admin-pass", "admin password", plan(instance("vm", adminPass="S3cret!", secret={"adminPass"})))
good("cmp-no-admin-pass", "keys only", plan(instance("vm", keyPair="ghtadmin")))

PEM = "#cloud-config\nwrite_files:\n  - content: |\n      -----BEGIN OPENSSH PRIVATE KEY-----\n      abc\n"
bad("cmp-no-secret-in-user-data", "private key", plan(instance("vm", userData=PEM)))
bad("cmp-no-secret-in-user-data", "chpasswd", plan(instance("vm", userData="#cloud-config\nchpasswd:\n  list: |\n"
                                                                            "    root:toor\n  expire: false\n")))
bad("cmp-no-secret-in-user-data", "plain_text_passwd",
    plan(instance("vm", userData="#cloud-config\nusers:\n  - name: admin\n    plain_text_passwd: Passw0rd\n")))
bad("cmp-no-secret-in-user-data", "token in a script",
    plan(instance("vm", userData="#!/bin/sh\nexport API_TOKEN=abcd1234efgh5678ijkl\n")))
bad("cmp-no-secret-in-user-data", "base64 password",
    plan(instance("vm", userData=base64.b64encode(b"#!/bin/sh\nDB_PASSWORD=Sup3rSecret! ./install\n").decode())))
good("cmp-no-secret-in-user-data", "keys and packages",
     plan(instance("vm", userData="#cloud-config\nssh_pwauth: false\nusers:\n  - name: ghtadmin\n"
                                  "    lock_passwd: true\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3 admin]\n"
                                  "packages: [nginx]\n")))
good("cmp-no-secret-in-user-data", "sudoers NOPASSWD tag",
     plan(instance("vm", userData="#cloud-config\nwrite_files:\n  - content: |\n      %ops ALL=(ALL) NOPASSWD: ALL\n")))
good("cmp-no-secret-in-user-data", "vault reference",
     plan(instance("vm", userData="#!/bin/sh\nDB_PASSWORD=${vault_db_password}\n")))

bad("cmp-mandatory-metadata", "missing keys", plan(res(t.VOLUME, "v", size=10.0, metadata={"zone": "hds-app"})))
bad("cmp-mandatory-metadata", "unknown data class",
    plan(res(t.VOLUME, "v", size=10.0, metadata={**FULL_METADATA, "data_class": "secret"})))
bad("cmp-mandatory-metadata", "unknown zone", plan(instance("vm", zone="lan")))
good("cmp-mandatory-metadata", "complete", plan(instance("vm"), res(t.VOLUME, "v", size=10.0, metadata=FULL_METADATA)))

bad("cmp-ports-in-own-zone", "application host on the data network",
    plan(network("hds-data-net", "hds-data"), instance("app", networks=[{"uuid": ref("hds-data-net")}])))
bad("cmp-ports-in-own-zone", "unknown network", plan(instance("app", networks=[{"uuid": "abc"}])))
good("cmp-ports-in-own-zone", "own zone", plan(network("hds-app-net", "hds-app"), instance("app")))
good("cmp-ports-in-own-zone", "gateway role",
     plan(network("admin-net", "admin"), network("hds-app-net", "hds-app"),
          instance("bastion", role="bastion", zone="admin",
                   networks=[{"uuid": ref("admin-net")}, {"uuid": ref("hds-app-net")}])))

ANTI = res(t.SERVER_GROUP, "db-group", policies="anti-affinity")
HINT = [{"group": ref("db-group")}]
bad("cmp-ha-anti-affinity", "single critical instance",
    plan(ANTI, instance("db-01", role="dpi_db", criticality="critical", schedulerHints=HINT)))
bad("cmp-ha-anti-affinity", "soft affinity",
    plan(res(t.SERVER_GROUP, "db-group", policies="affinity"),
         *(instance(f"db-0{i}", role="dpi_db", criticality="critical", schedulerHints=HINT) for i in (1, 2))))
bad("cmp-ha-anti-affinity", "no server group",
    plan(*(instance(f"db-0{i}", role="dpi_db", criticality="critical") for i in (1, 2))))
good("cmp-ha-anti-affinity", "two instances apart",
     plan(ANTI, *(instance(f"db-0{i}", role="dpi_db", criticality="critical", schedulerHints=HINT) for i in (1, 2))))
good("cmp-ha-anti-affinity", "standard service", plan(instance("app-01")))

bad("cmp-keypair-public-only", "generated key", plan(res(t.KEYPAIR, "k", name="k")))
good("cmp-keypair-public-only", "imported key", plan(res(t.KEYPAIR, "k", name="k", publicKey="ssh-ed25519 AAAA x")))

# --- STO ----------------------------------------------------------------------------------------------
bad("sto-hds-volume-encrypted", "classic volume", plan(res(t.VOLUME, "v", size=50.0, volumeType="classic",
                                                            metadata=FULL_METADATA)))
bad("sto-hds-volume-encrypted", "default type", plan(res(t.VOLUME, "v", size=50.0, metadata=FULL_METADATA)))
bad("sto-hds-volume-encrypted", "boot volume type",
    plan(instance("vm", blockDevices=[{"sourceType": "image", "destinationType": "volume", "volumeType": "classic"}])))
bad("sto-hds-volume-encrypted", "local disk", plan(instance("vm", blockDevices=[])))
good("sto-hds-volume-encrypted", "encrypted", plan(instance("vm"), res(t.VOLUME, "v", size=50.0,
                                                                      volumeType="encrypted-luks",
                                                                      metadata=FULL_METADATA)))
good("sto-hds-volume-encrypted", "non-health volume",
     plan(res(t.VOLUME, "v", size=50.0, volumeType="classic", metadata={**FULL_METADATA, "data_class": "nonhds"})))

bad("sto-container-private", "public read", plan(res(t.CONTAINER, "c", name="c", containerRead=".r:*,.rlistings",
                                                      versioning=True)))
bad("sto-container-private", "world write", plan(res(t.CONTAINER, "c", name="c", containerWrite="*:*")))
good("sto-container-private", "project read", plan(res(t.CONTAINER, "c", name="c", containerRead="proj:backup")))

bad("sto-container-versioned", "not versioned", plan(res(t.CONTAINER, "c", name="ght-backup-prod")))
bad("sto-container-versioned", "non-health backups", plan(res(t.CONTAINER, "c", name="backup-hr",
                                                              metadata={"data_class": "nonhds"})))
good("sto-container-versioned", "versioned", plan(res(t.CONTAINER, "c", name="c", versioning=True)))
good("sto-container-versioned", "non-health data", plan(res(t.CONTAINER, "c", name="web-assets",
                                                            metadata={"data_class": "nonhds"})))

bad("sto-no-cleartext-protocol-ports", "ftp into hds-app",
    plan(secgroup("g", "hds-app"), rule("r", "g", ports=(21, 21), prefix="10.40.2.0/24")))
bad("sto-no-cleartext-protocol-ports", "http into hds-app",
    plan(secgroup("g", "hds-app"), rule("r", "g", ports=(80, 80), remote="rp")))
bad("sto-no-cleartext-protocol-ports", "ldap from another zone",
    plan(secgroup("g", "identity-t0"), secgroup("app", "hds-app"), rule("r", "g", ports=(389, 389), remote="app")))
good("sto-no-cleartext-protocol-ports", "http redirect in dmz-in",
     plan(secgroup("g", "dmz-in"), rule("r", "g", ports=(80, 80), prefix="0.0.0.0/0")))
good("sto-no-cleartext-protocol-ports", "ldap inside one zone",
     plan(secgroup("g", "identity-t0"), secgroup("dc", "identity-t0"), rule("r", "g", ports=(389, 389), remote="dc")))
good("sto-no-cleartext-protocol-ports", "ldaps", plan(secgroup("g", "identity-t0"),
                                                      rule("r", "g", ports=(636, 636), prefix="10.40.2.0/24")))

bad("sto-secret-inputs-are-secret", "plaintext psk", plan(res(t.SITE_CONNECTION, "vpn", psk="hunter2hunter2")))
bad("sto-secret-inputs-are-secret", "plaintext token", plan(res(t.SECRET_V1, "s", apiToken="abc")))
good("sto-secret-inputs-are-secret", "secret value", plan(res(t.SITE_CONNECTION, "vpn", psk="k" * 16, secret={"psk"})))
good("sto-secret-inputs-are-secret", "no secret input", plan(res(t.NETWORK, "n", name="n")))

# --- BCK ----------------------------------------------------------------------------------------------
bad("bck-hds-vm-has-backup-policy", "no backup policy",
    plan(instance("app", metadata={**FULL_METADATA, "backup_policy": ""}), outputs=BACKUP_OUTPUTS))
bad("bck-hds-vm-has-backup-policy", "undeclared policy",
    plan(instance("app", metadata={**FULL_METADATA, "backup_policy": "weekly"}), outputs=BACKUP_OUTPUTS))
bad("bck-hds-vm-has-backup-policy", "no tier", plan(instance("app"),
                                                    outputs={"ght": {"backup_policies": {"daily-30d": {
                                                        "keep_daily": 30, "offsite": True}}}}))
good("bck-hds-vm-has-backup-policy", "declared and served", plan(instance("app"), outputs=BACKUP_OUTPUTS))
good("bck-hds-vm-has-backup-policy", "non-health host", plan(instance("hr", data_class="nonhds")))

bad("bck-policy-has-offsite-copy", "short retention",
    plan(outputs={"ght": {"backup_policies": {"week": {"keep_daily": 7, "offsite": True}}}}))
bad("bck-policy-has-offsite-copy", "on-site only",
    plan(outputs={"ght": {"backup_policies": {"daily": {"keep_daily": 30, "offsite": False}}}}))
bad("bck-policy-has-offsite-copy", "off-site region equals region",
    plan(outputs={"ght": {"backup_policies": {"daily": {"keep_daily": 30, "offsite": True}},
                          "backup_tiers": {"object_storage": {"region": "eu-fr-1", "offsite_region": "eu-fr-1"}}}}))
good("bck-policy-has-offsite-copy", "30 days off-site", plan(outputs=BACKUP_OUTPUTS))

bad("bck-offline-copy-declared", "no offline copy",
    plan(outputs={"ght": {"backup_policies": {"daily": {"keep_daily": 30, "offsite": True}}}}))
bad("bck-offline-copy-declared", "too short",
    plan(outputs={"ght": {"backup_policies": {"daily": {"keep_daily": 30}},
                          "backup_tiers": {"offline": {"mode": "offline", "min_days": 7}}}}))
good("bck-offline-copy-declared", "immutable copy", plan(outputs=BACKUP_OUTPUTS))
good("bck-offline-copy-declared", "no backup declared at all", plan(network("n", "log")))

bad("bck-backup-zone-isolated", "https into the backup zone",
    plan(secgroup("g", "backup"), rule("r", "g", ports=(443, 443), prefix="10.40.2.0/24")))
bad("bck-backup-zone-isolated", "backup server outside its zone", plan(instance("backup-01", role="backup_server")))
good("bck-backup-zone-isolated", "repository and ssh",
     plan(secgroup("g", "backup"), rule("r1", "g", ports=(8000, 8000), prefix="10.40.2.0/24"),
          rule("r2", "g", ports=(22, 22), remote="bastion"),
          instance("backup-01", role="backup_server", zone="backup")))

# --- IAM ----------------------------------------------------------------------------------------------
bad("iam-user-mfa-enabled", "no MFA", plan(res(t.USER, "alice", name="alice")))
bad("iam-user-mfa-enabled", "MFA without rules", plan(res(t.USER, "alice", name="alice", multiFactorAuthEnabled=True)))
good("iam-user-mfa-enabled", "MFA with rules",
     plan(res(t.USER, "alice", multiFactorAuthEnabled=True, multiFactorAuthRules=[{"rules": ["password", "totp"]}])))
good("iam-user-mfa-enabled", "disabled user", plan(res(t.USER, "old", enabled=False)))

bad("iam-app-credential-expiry", "never expires", plan(res(t.APPLICATION_CREDENTIAL, "ci")))
bad("iam-app-credential-expiry", "one year",
    plan(res(t.APPLICATION_CREDENTIAL, "ci", expiresAt=(NOW + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"))))
good("iam-app-credential-expiry", "thirty days",
     plan(res(t.APPLICATION_CREDENTIAL, "ci", expiresAt=(NOW + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))))

bad("iam-app-credential-restricted", "unrestricted", plan(res(t.APPLICATION_CREDENTIAL, "ci", unrestricted=True)))
bad("iam-app-credential-restricted", "admin role", plan(res(t.APPLICATION_CREDENTIAL, "ci", roles=["admin"])))
good("iam-app-credential-restricted", "member role", plan(res(t.APPLICATION_CREDENTIAL, "ci", roles=["member"],
                                                              unrestricted=False)))

bad("iam-no-plaintext-password", "literal password",
    plan(res(t.USER, "svc", password="Changeme123", secret={"password"})))
good("iam-no-plaintext-password", "secure config",
     plan(res(t.USER, "svc", password="offline-placeholder-aaaaaaaaaaaaaaaaaaaaaaaa", secret={"password"})))
good("iam-no-plaintext-password", "no password", plan(res(t.USER, "svc", name="svc")))

# --- LOG ----------------------------------------------------------------------------------------------
bad("log-collector-flow-tls", "plain syslog into the log zone",
    plan(secgroup("g", "log"), rule("r", "g", protocol="udp", ports=(514, 514), prefix="10.40.0.0/16")))
bad("log-collector-flow-tls", "plain syslog towards collectors",
    plan(secgroup("g", "hds-app"), secgroup("logs", "log"),
         rule("r", "g", direction="egress", ports=(514, 514), remote="logs")))
good("log-collector-flow-tls", "syslog over TLS",
     plan(secgroup("g", "log"), rule("r", "g", ports=(6514, 6514), prefix="10.40.0.0/16")))
good("log-collector-flow-tls", "514 elsewhere", plan(secgroup("g", "hds-app"),
                                                     rule("r", "g", ports=(514, 514), prefix="10.40.2.0/24")))

# --- LOC ----------------------------------------------------------------------------------------------
bad("loc-region-allowlist", "region outside the EEA", plan(config={"openstack:region": "us-east-1"}))
bad("loc-region-allowlist", "no region", plan(network("n", "log")))
bad("loc-region-allowlist", "resource region", plan(res(t.NETWORK, "n", region="ca-central-1"),
                                                    config={"openstack:region": "eu-fr-1"}))
bad("loc-region-allowlist", "explicit provider", plan(res(t.OPENSTACK_PROVIDER, "p", region="ap-south-1")))
good("loc-region-allowlist", "allowed region", plan(res(t.NETWORK, "n", region="eu-fr-2"),
                                                    config={"openstack:region": "eu-fr-1"}))

bad("loc-auth-url-allowlist", "foreign endpoint", plan(config={"openstack:authUrl": "https://auth.cloud.example.com/v3"}))
bad("loc-auth-url-allowlist", "cleartext endpoint",
    plan(config={"openstack:authUrl": "http://auth.cloud.example.eu:5000/v3"}))
bad("loc-auth-url-allowlist", "no endpoint", plan())
good("loc-auth-url-allowlist", "allowed endpoint",
     plan(config={"openstack:authUrl": "https://auth.cloud.example.eu:5000/v3"}))

bad("loc-container-region-allowlist", "container abroad", plan(res(t.CONTAINER, "c", name="c", region="us-west-1")))
good("loc-container-region-allowlist", "container in the EEA", plan(res(t.CONTAINER, "c", name="c", region="eu-de-1")))
good("loc-container-region-allowlist", "provider region", plan(res(t.CONTAINER, "c", name="c")))
