"""The CrossGuard pack: importable without blocking, same policies, real analyzer server over gRPC.

The Pulumi CLI is not installable here, so the engine's side is played by a gRPC client speaking the
analyzer protocol to the pack process, the way ``pulumi preview --policy-pack policies`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import unknown_checking_proxy

from ght_socle.catalog import Catalog
from ght_socle.policy import helpers as t
from ght_socle.policy.pack import PACK_NAME, build_policies
from ght_socle.policy.registry import implemented_policies

ROOT = Path(__file__).resolve().parents[2]
PACK_MAIN = ROOT / "policies" / "__main__.py"
OPTS = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                             custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
SSH_WORLD = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": 22.0,
             "portRangeMax": 22.0, "remoteIpPrefix": "0.0.0.0/0", "securityGroupId": "sg-1",
             "description": "FLOW-001 ssh"}


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::demo::{type_}::{name}"


def _validate(policy: ResourceValidationPolicy, type_: str, props: dict[str, Any], name: str = "r") -> list[str]:
    messages: list[str] = []
    args = ResourceValidationArgs(type_, unknown_checking_proxy(props), _urn(type_, name), name, OPTS, None, {})
    result = policy.validate(args, lambda message, urn=None: messages.append(message))
    assert result is None  # the wrappers are synchronous
    return messages


@pytest.fixture(scope="module")
def pack_policies(catalog: Catalog) -> dict[str, ResourceValidationPolicy | StackValidationPolicy]:
    return {p.name: p for p in build_policies(catalog)}


def test_importing_the_entry_point_does_not_block() -> None:
    code = f"import runpy; ns = runpy.run_path({str(PACK_MAIN)!r}, run_name='m'); print(len(ns['POLICIES']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == len(implemented_policies())


def test_pack_wraps_every_policy_with_catalog_levels(pack_policies: dict[str, Any], catalog: Catalog) -> None:
    assert set(pack_policies) == set(implemented_policies())
    for name, built in pack_policies.items():
        rule_id = implemented_policies()[name]
        expected = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY,
                    "disabled": EnforcementLevel.DISABLED}[catalog.enforcement(rule_id)]
        assert built.enforcement_level == expected, name


def test_resource_policy_validate_reports_and_passes(pack_policies: dict[str, Any]) -> None:
    all_ports = pack_policies["net-no-all-ports-rule"]
    assert isinstance(all_ports, ResourceValidationPolicy)
    messages = _validate(all_ports, t.SECGROUP_RULE, {**SSH_WORLD, "portRangeMin": None, "portRangeMax": None})
    assert len(messages) == 1 and "every port" in messages[0] and "Fix:" in messages[0]
    assert messages[0].startswith(f"{implemented_policies()['net-no-all-ports-rule']}: ")  # the PSSI rule ID
    assert _validate(all_ports, t.SECGROUP_RULE, SSH_WORLD) == []
    # Another type is ignored by the wrapper.
    assert _validate(all_ports, t.NETWORK, {"name": "n"}) == []


def test_user_data_secret_through_the_wrapper(pack_policies: dict[str, Any]) -> None:
    user_data = pack_policies["cmp-no-secret-in-user-data"]
    props = {"imageName": "debian-12-ght-golden", "userData": "#cloud-config\nchpasswd:\n  list: root:toor\n",
             "networks": [{"uuid": "n"}], "metadata": {"zone": "hds-app"}}
    assert _validate(user_data, t.INSTANCE, props, "vm")
    assert _validate(user_data, t.INSTANCE, {**props, "userData": "#cloud-config\npackages: [curl]\n"}, "vm") == []


def test_psk_from_secret_config_in_the_pack(pack_policies: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    psk_policy = pack_policies["net-vpn-psk-secret"]
    monkeypatch.setenv("PULUMI_CONFIG", '{"demo:psk": "s3cr3t-psk-value"}')
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["demo:psk"]')
    assert _validate(psk_policy, t.SITE_CONNECTION, {"psk": "s3cr3t-psk-value"}) == []
    assert _validate(psk_policy, t.SITE_CONNECTION, {"psk": "typed-in-the-program"})


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(props)
    return value


def _stack_request() -> Any:
    group_urn = _urn(t.SECGROUP, "app")
    group = proto.AnalyzerResource(type=t.SECGROUP, urn=group_urn, name="app",
                                   properties=_struct({"name": "app", "deleteDefaultRules": True,
                                                       "tags": ["zone=hds-app"]}))
    rule = proto.AnalyzerResource(
        type=t.SECGROUP_RULE, urn=_urn(t.SECGROUP_RULE, "ssh-world"), name="ssh-world",
        properties=_struct({**SSH_WORLD, "securityGroupId": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}),
        propertyDependencies={"securityGroupId": proto.AnalyzerPropertyDependencies(urns=[group_urn])})
    return proto.AnalyzeStackRequest(resources=[group, rule])


def test_servicer_analyze_stack_follows_property_dependencies(pack_policies: dict[str, Any]) -> None:
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", list(pack_policies.values()), EnforcementLevel.ADVISORY)
    response = servicer.AnalyzeStack(_stack_request(), None)
    by_policy = {d.policyName: d for d in response.diagnostics}
    world = by_policy["net-no-world-ingress"]
    assert "zone hds-app" in world.message  # the rule's group was found through its dependency
    assert world.urn == _urn(t.SECGROUP_RULE, "ssh-world")
    assert world.enforcementLevel == proto.MANDATORY
    assert "net-admin-ports-from-admin-only" in by_policy


@pytest.fixture(scope="module")
def pack_server() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack started as the CLI starts it (``__main__``): it prints its port and serves until killed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-u", str(PACK_MAIN)], cwd=ROOT / "policies", env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port_line = process.stdout.readline().strip()
        stderr = process.stderr.read() if process.poll() is not None and process.stderr else ""
        assert port_line.isdigit(), f"no port handshake: {port_line!r} {stderr}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port_line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


def test_real_pack_server_describes_its_policies(pack_server: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = pack_server.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == PACK_NAME
    assert {p.name for p in info.policies} == set(implemented_policies())


def test_real_pack_server_analyzes_a_resource(pack_server: analyzer_pb2_grpc.AnalyzerStub) -> None:
    request = proto.AnalyzeRequest(type=t.INSTANCE, urn=_urn(t.INSTANCE, "vm"), name="vm",
                                   properties=_struct({"imageName": "ubuntu", "adminPass": "x",
                                                       "networks": [{"uuid": "n"}], "securityGroups": ["app"]}))
    response = pack_server.Analyze(request, timeout=60)
    names = {d.policyName for d in response.diagnostics}
    assert {"cmp-image-allowlist", "cmp-no-admin-pass", "cmp-mandatory-metadata"} <= names
    assert all(d.enforcementLevel == proto.MANDATORY for d in response.diagnostics
               if d.policyName == "cmp-no-admin-pass")


def test_real_pack_server_analyzes_the_stack(pack_server: analyzer_pb2_grpc.AnalyzerStub) -> None:
    response = pack_server.AnalyzeStack(_stack_request(), timeout=60)
    assert "net-no-world-ingress" in {d.policyName for d in response.diagnostics}


def test_stack_config_reaches_stack_policies(pack_policies: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine passes the stack configuration in PULUMI_CONFIG; the region policy reads it."""
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", [pack_policies["loc-region-allowlist"]],
                                       EnforcementLevel.ADVISORY)
    monkeypatch.setenv("PULUMI_CONFIG", '{"openstack:region": "us-east-1"}')
    [diagnostic] = servicer.AnalyzeStack(_stack_request(), None).diagnostics
    assert "us-east-1" in diagnostic.message
    monkeypatch.setenv("PULUMI_CONFIG", '{"openstack:region": "eu-fr-1"}')
    assert list(servicer.AnalyzeStack(_stack_request(), None).diagnostics) == []


def test_pack_project_file_runs_python_in_the_project_venv() -> None:
    import yaml

    project = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["version"]
    venv = ROOT / "policies" / project["runtime"]["options"]["virtualenv"]
    done = subprocess.run([str(venv / "bin" / "python"), "-c", "import pulumi_policy, ght_socle.policy.pack"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_new_security_groups_of_a_port_are_not_unknown_errors(pack_policies: dict[str, Any]) -> None:
    """In preview a new group's ID is unknown: the port still counts as having its own groups."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker of a value unknown in preview
    policy = pack_policies["net-no-default-secgroup"]
    assert _validate(policy, t.PORT, {"networkId": unknown, "securityGroupIds": [unknown]}) == []
    assert _validate(policy, t.PORT, {"networkId": unknown})


# --- preview: values the engine learns only at `up` -----------------------------------------------------
# The real analyzer hands policies these as unknowns; reading one used to make pulumi-policy report
# "can't run policy ... during preview" (found by previewing the stacks with the real engine).

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker of an unknown value


def _resource(type_: str, name: str, props: dict[str, Any],
              dependencies: dict[str, list[str]] | None = None) -> Any:
    return proto.AnalyzerResource(
        type=type_, urn=_urn(type_, name), name=name, properties=_struct(props),
        propertyDependencies={prop: proto.AnalyzerPropertyDependencies(urns=urns)
                              for prop, urns in (dependencies or {}).items()})


def _diagnostics(pack_policies: dict[str, Any], request: Any) -> list[Any]:
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", list(pack_policies.values()), EnforcementLevel.ADVISORY)
    return list(servicer.AnalyzeStack(request, None).diagnostics)


def test_an_unknown_id_among_the_inputs_does_not_stop_the_secret_input_policy(pack_policies: dict[str, Any]) -> None:
    secret_inputs = pack_policies["sto-secret-inputs-are-secret"]
    assert _validate(secret_inputs, t.PORT, {"networkId": UNKNOWN, "name": "p"}) == []
    # A literal secret beside an unknown ID is still reported.
    [message] = _validate(secret_inputs, t.SITE_CONNECTION, {"vpnserviceId": UNKNOWN, "psk": "typed-in"})
    assert "psk" in message


def test_an_unknown_remote_prefix_is_judged_at_up_not_reported_in_preview(pack_policies: dict[str, Any]) -> None:
    group = _resource(t.SECGROUP, "admin", {"name": "admin", "deleteDefaultRules": True, "tags": ["zone=admin"]})
    rule = _resource(t.SECGROUP_RULE, "ssh-from-site", {**SSH_WORLD, "remoteIpPrefix": UNKNOWN,
                                                         "securityGroupId": UNKNOWN},
                     {"securityGroupId": [group.urn]})
    diagnostics = _diagnostics(pack_policies, proto.AnalyzeStackRequest(resources=[group, rule]))
    assert not [d.message for d in diagnostics if "can't run" in d.message or d.urn == rule.urn]


def test_new_ports_of_an_instance_are_found_through_its_dependencies(pack_policies: dict[str, Any]) -> None:
    networks = {zone: _resource(t.NETWORK, f"net-{zone}", {"name": zone, "tags": [f"zone={zone}"]})
                for zone in ("hds-app", "log")}
    ports = {zone: _resource(t.PORT, f"vm-{zone}", {"networkId": UNKNOWN, "securityGroupIds": [UNKNOWN]},
                             {"networkId": [networks[zone].urn]}) for zone in networks}

    def instance(*zones: str) -> Any:
        return _resource(t.INSTANCE, "vm", {"networks": [{"port": UNKNOWN} for _ in zones],
                                            "metadata": {"zone": "hds-app", "role": "dpi_app"},
                                            "tags": ["zone=hds-app", "role=dpi_app"]},
                         {"networks": [ports[zone].urn for zone in zones]})

    def own_zone(*zones: str) -> list[str]:
        request = proto.AnalyzeStackRequest(resources=[*networks.values(), *ports.values(), instance(*zones)])
        diagnostics = _diagnostics(pack_policies, request)
        assert not [d.message for d in diagnostics if "can't run" in d.message]
        return [d.message for d in diagnostics if d.policyName == "cmp-ports-in-own-zone"]

    assert own_zone("hds-app") == []
    [message] = own_zone("hds-app", "log")
    assert "port vm-log is in zone log" in message


def test_waivers_cover_the_same_violations_in_the_pack(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import ght_socle.policy.pack as pack_module
    from ght_socle.policy.engine import Waiver

    monkeypatch.setattr(pack_module.pulumi, "get_stack", lambda: "dev")
    monkeypatch.setattr(pack_module.pulumi, "get_project", lambda: "demo")
    waiver = Waiver(rule="NET-003", policy="net-no-all-ports-rule", resource="ssh-*", justification="test",
                    approver="RSSI", expires="2027-01-31", stacks=("dev",))
    all_ports_rule = {**SSH_WORLD, "portRangeMin": None, "portRangeMax": None}
    waived = {p.name: p for p in build_policies(catalog, [waiver])}["net-no-all-ports-rule"]
    assert isinstance(waived, ResourceValidationPolicy)
    assert _validate(waived, t.SECGROUP_RULE, all_ports_rule, "ssh-world") == []
    assert _validate(waived, t.SECGROUP_RULE, all_ports_rule, "web-world")  # another resource: not covered
    monkeypatch.setattr(pack_module.pulumi, "get_stack", lambda: "prod")
    assert _validate(waived, t.SECGROUP_RULE, all_ports_rule, "ssh-world")  # another stack: not covered


def test_a_psk_inside_a_structured_secret_key_is_a_secret(pack_policies: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi config set --secret --path ght-socle:sites.ch-nord.psk` makes the whole sites object secret."""
    psk_policy = pack_policies["net-vpn-psk-secret"]
    sites = json.dumps({"ch-nord": {"cidr": "10.2.0.0/16", "psk": "k3y-from-the-stack-file"}})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"ght-socle:sites": sites}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["ght-socle:sites"]')
    assert _validate(psk_policy, t.SITE_CONNECTION, {"psk": "k3y-from-the-stack-file"}) == []
    assert _validate(psk_policy, t.SITE_CONNECTION, {"psk": "typed-in-the-program"})


def test_an_input_the_sdk_always_sends_as_secret_is_a_secret_in_the_pack(pack_policies: dict[str, Any]) -> None:
    """The SDK wraps an instance's adminPass in a secret: encrypted in the state, as socle check knows."""
    secret_inputs_policy = pack_policies["sto-secret-inputs-are-secret"]
    assert _validate(secret_inputs_policy, t.INSTANCE, {"adminPass": "Rh-Admin-2024"}) == []
    assert _validate(secret_inputs_policy, t.SITE_CONNECTION, {"psk": "Rh-Admin-2024"})  # not schema-secret
    assert _validate(pack_policies["cmp-no-admin-pass"], t.INSTANCE,
                     {"adminPass": "Rh-Admin-2024", "networks": [{"uuid": "n"}], "securityGroups": ["app"]})
