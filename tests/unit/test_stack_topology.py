"""Topology of the project's stacks, planned offline under the mock engine."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
import yaml
from stack_plans import (
    FLOATING_IP,
    INSTANCE,
    NETWORK,
    PORT,
    ROUTER,
    ROUTER_INTERFACE,
    SECGROUP,
    SECGROUP_RULE,
    SERVER_GROUP,
    SITE_CONNECTION,
    STACKS,
    SUBNET,
    VOLUME,
    by_id,
    plan_of,
    zone_tag,
)

from ght_socle.catalog import default_catalog
from ght_socle.plan_model import Plan

METADATA_KEYS = {"zone", "data_class", "tier", "owner", "backup_policy", "criticality"}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest) -> Plan:
    return plan_of(request.param)


def test_every_zone_has_one_network_and_one_subnet_tagged_with_it(plan: Plan) -> None:
    zones = set(plan.outputs["zones"])
    assert {"dmz-in", "dmz-out", "admin", "identity", "hds-app", "hds-data", "interop", "nonhds", "backup", "log",
            "transit"} <= zones
    for type_token in (NETWORK, SUBNET):
        tagged = [zone_tag(r) for r in plan.of_type(type_token)]
        assert sorted(t for t in tagged if t is not None) == sorted(zones), type_token
        assert None not in tagged
    for subnet in plan.of_type(SUBNET):
        assert subnet.inputs["cidr"] == plan.outputs["zones"][zone_tag(subnet)]


def test_no_hds_subnet_behind_an_external_gateway(plan: Plan) -> None:
    routers = plan.of_type(ROUTER)
    external = {f"{r.name}-id" for r in routers if r.inputs.get("externalNetworkId")}
    internal = {f"{r.name}-id" for r in routers if not r.inputs.get("externalNetworkId")}
    assert external and internal
    subnets, ports = by_id(plan, SUBNET), by_id(plan, PORT)
    zones_by_router: dict[str, set[str | None]] = {}
    for interface in plan.of_type(ROUTER_INTERFACE):
        attached = subnets.get(interface.inputs.get("subnetId", "")) or ports.get(interface.inputs.get("portId", ""))
        assert attached is not None, interface.name
        zones_by_router.setdefault(interface.inputs["routerId"], set()).add(zone_tag(attached))
    for router_id in external:
        assert not any(z is not None and z.startswith("hds-") for z in zones_by_router[router_id])
        assert zones_by_router[router_id] <= {"dmz-in", "dmz-out", "transit"}
    hds_routers = {r for r, zones in zones_by_router.items() if any(z and z.startswith("hds-") for z in zones)}
    assert hds_routers and hds_routers <= internal


def test_every_instance_boots_from_an_encrypted_volume_of_an_allowed_image(plan: Plan) -> None:
    encrypted = set(default_catalog().param("STO-001", "encrypted_volume_types"))
    images = set(default_catalog().param("CMP-001", "allowed_images"))
    instances = plan.of_type(INSTANCE)
    assert len(instances) == len(plan.outputs["hosts"])
    for instance in instances:
        boot = [d for d in instance.inputs["blockDevices"] if d.get("bootIndex") == 0]
        assert len(boot) == 1, instance.name
        assert boot[0]["sourceType"] == "image" and boot[0]["destinationType"] == "volume"
        assert boot[0]["volumeType"] in encrypted
        assert instance.inputs["imageName"] in images
        assert "adminPass" not in instance.inputs
        assert set(instance.inputs["metadata"]) >= METADATA_KEYS
        assert "keyPair" in instance.inputs and "securityGroups" not in instance.inputs
    for volume in plan.of_type(VOLUME):
        assert volume.inputs["volumeType"] in encrypted
        assert set(volume.inputs["metadata"]) >= METADATA_KEYS


def test_ha_roles_have_two_instances_in_an_anti_affinity_group_across_zones(plan: Plan) -> None:
    groups = by_id(plan, SERVER_GROUP)
    assert all(g.inputs["policies"] == "anti-affinity" for g in groups.values())
    by_role: dict[str, list[dict[str, Any]]] = {}
    for instance in plan.of_type(INSTANCE):
        by_role.setdefault(instance.inputs["metadata"]["role"], []).append(instance.inputs)
    critical_roles = {r for r, members in by_role.items() if members[0]["metadata"]["criticality"] == "critical"}
    ha_roles = {r for r, members in by_role.items() if "schedulerHints" in members[0]}
    assert critical_roles <= ha_roles
    assert len(groups) == len(ha_roles)
    for role in ha_roles:
        members = by_role[role]
        assert len(members) >= 2, role
        hinted = {hint["group"] for m in members for hint in m["schedulerHints"]}
        assert len(hinted) == 1 and hinted <= set(groups), role
        zones = {m.get("availabilityZone") for m in members}
        if plan.stack != "lab":  # several availability zones configured: the members are spread
            assert len(zones) >= 2, role


def test_ports_are_fixed_in_their_zone_and_carry_zone_and_role_groups(plan: Plan) -> None:
    subnets = by_id(plan, SUBNET)
    groups = by_id(plan, SECGROUP)
    hosts = plan.outputs["hosts"]
    for port in plan.of_type(PORT):
        fixed = port.inputs["fixedIps"]
        assert len(fixed) == 1
        subnet = subnets[fixed[0]["subnetId"]]
        assert zone_tag(subnet) == zone_tag(port)
        assert ipaddress.ip_address(fixed[0]["ipAddress"]) in ipaddress.ip_network(subnet.inputs["cidr"])
        assert port.inputs["securityGroupIds"] and all(g in groups for g in port.inputs["securityGroupIds"])
        host = next((t[5:] for t in port.inputs["tags"] if t.startswith("host=")), None)
        if host is not None:
            assert hosts[host]["addresses"][zone_tag(port)] == fixed[0]["ipAddress"]


def test_security_groups_come_from_the_flow_matrix(plan: Plan) -> None:
    groups = plan.of_type(SECGROUP)
    assert all(g.inputs["deleteDefaultRules"] is True and g.inputs["name"] != "default" for g in groups)
    rules = plan.of_type(SECGROUP_RULE)
    assert rules
    (network,) = plan.of_type("ght:network:ZonedNetwork")
    matrix = network.inputs["flows"]
    # Every flow of the matrix produced rules, and every rule names a flow of the matrix.
    assert {r.inputs["description"].split(":")[0] for r in rules} == set(matrix)
    for rule in rules:
        assert re.match(r"^FLOW-\d{3}: ", rule.inputs["description"]), rule.name
        assert rule.inputs["protocol"] in ("tcp", "udp")
        assert rule.inputs["portRangeMin"] <= rule.inputs["portRangeMax"]
        assert ("remoteIpPrefix" in rule.inputs) != ("remoteGroupId" in rule.inputs)
        if rule.inputs.get("remoteIpPrefix") == "0.0.0.0/0" and rule.inputs["direction"] == "ingress":
            assert zone_tag(next(g for g in groups if f"{g.name}-id" == rule.inputs["securityGroupId"])) == "dmz-in"


def test_floating_ips_only_on_dmz_in_ports(plan: Plan) -> None:
    ports = by_id(plan, PORT)
    for fip in plan.of_type(FLOATING_IP):
        assert zone_tag(ports[fip.inputs["portId"]]) == "dmz-in"
    bastion = plan.outputs["bastion"]
    assert not any(f.name.startswith(bastion) for f in plan.of_type(FLOATING_IP))


def test_user_data_has_admin_access_and_no_secret(plan: Plan) -> None:
    secrets = [str(v) for r in plan.resources for k, v in r.inputs.items() if k in r.secret_keys]
    for instance in plan.of_type(INSTANCE):
        text = instance.inputs["userData"]
        document = yaml.safe_load(text)
        assert document["hostname"] == instance.inputs["name"]
        assert document["ssh_pwauth"] is False
        (user,) = document["users"]
        assert user["name"] == "ghtadmin" and user["lock_passwd"] is True
        assert set(user["groups"]) == {"ght-admins", "ght-automation"}
        assert user["ssh_authorized_keys"]
        assert not {"passwd", "hashed_passwd", "plain_text_passwd", "chpasswd"} & (set(user) | set(document))
        assert "PRIVATE KEY" not in text
        assert not any(secret in text for secret in secrets)
        sudoers = [f for f in document["write_files"] if f["path"].startswith("/etc/sudoers.d/")]
        assert sudoers and sudoers[0]["content"].strip().endswith("%ght-automation ALL=(ALL:ALL) NOPASSWD: ALL")


def test_prod_is_a_realistic_ght_with_site_vpns() -> None:
    plan = plan_of("prod")
    hosts = plan.outputs["hosts"]
    assert len(hosts) >= 40
    groups = {g for h in hosts.values() for g in h["groups"]}
    assert {"dpi_app", "dpi_db", "pacs", "interop", "identity", "log_collector", "backup_server", "bastion",
            "reverse_proxy"} <= groups
    connections = plan.of_type(SITE_CONNECTION)
    assert len(connections) >= 8
    for connection in connections:
        assert connection.secret_keys == {"psk"}
        assert connection.as_json()["inputs"]["psk"] == "[secret]"
    ike = plan.of_type("openstack:vpnaas/ikePolicy:IkePolicy")[0].inputs
    ipsec = plan.of_type("openstack:vpnaas/ipSecPolicy:IpSecPolicy")[0].inputs
    assert (ike["ikeVersion"], ike["encryptionAlgorithm"], ike["authAlgorithm"], ike["pfs"]) == (
        "v2", "aes-256", "sha256", "group14")
    assert (ipsec["encryptionAlgorithm"], ipsec["authAlgorithm"], ipsec["pfs"]) == ("aes-256", "sha256", "group14")


def test_lab_matches_what_the_local_lab_boots() -> None:
    hosts = plan_of("lab").outputs["hosts"]
    assert set(hosts) == {"bastion-01", "app-01", "app-02", "logbak-01", "wks-01"}
    assert {"log_collector", "backup_server"} <= set(hosts["logbak-01"]["groups"])
    assert set(hosts["logbak-01"]["addresses"]) == {"log", "backup"}
    assert "linux_workstations" in hosts["wks-01"]["groups"]


def test_backup_tier_declares_three_copies_and_the_offline_one() -> None:
    plan = plan_of("prod")
    containers = plan.of_type("openstack:objectstorage/container:Container")
    regions = {c.inputs["region"] for c in containers}
    allowed = set(default_catalog().param("LOC-001", "allowed_regions"))
    assert len(regions) == 2 and regions <= allowed
    assert all(c.inputs["versioning"] is True and "containerRead" not in c.inputs for c in containers)
    repositories = [v for v in plan.of_type(VOLUME) if v.inputs["metadata"].get("purpose") == "backup-repository"]
    assert {v.inputs["metadata"]["zone"] for v in repositories} == {"backup"}
    (tier,) = plan.of_type("ght:backup:BackupTier")
    assert tier.inputs["offline"]["mode"] in ("offline", "immutable")
    assert tier.inputs["offline"]["operator_provides"]
    assert plan.outputs["ght"]["backup_tiers"]["offline"]["declared_only"] is True
