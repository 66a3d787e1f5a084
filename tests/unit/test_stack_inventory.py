"""Stack outputs are complete, and the generated inventory says the same thing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from stack_plans import INSTANCE, STACKS, plan_of

from ght_socle.cli import main
from ght_socle.errors import ConfigError
from ght_socle.inventory import known_hosts_filled, write_inventory
from ght_socle.trust.yamlio import parse_yaml

HOST_KEYS = {"role", "groups", "zone", "addresses", "address", "tier", "data_class", "jump", "ssh_user"}


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(" ")
        if key == "Host":
            current = blocks.setdefault(value, {})
        else:
            assert current is not None, line
            current[key] = value
    return blocks


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_are_complete_and_match_the_instances(stack: str) -> None:
    plan = plan_of(stack)
    outputs = plan.outputs
    hosts = outputs["hosts"]
    assert {i.inputs["name"] for i in plan.of_type(INSTANCE)} == set(hosts)
    bastion = outputs["bastion"]
    assert "bastion" in hosts[bastion]["groups"] and hosts[bastion]["zone"] == "admin"
    for name, host in hosts.items():
        assert set(host) >= HOST_KEYS, name
        assert host["role"] in host["groups"] and "linux" in host["groups"]
        assert f"zone_{host['zone'].replace('-', '_')}" in host["groups"]
        assert f"tier_{host['tier']}" in host["groups"]
        assert host["ssh_user"] == "ghtadmin"
        assert host["jump"] == (None if "bastion" in host["groups"] else bastion)
        assert host["address"] in host["addresses"].values()
    ght = outputs["ght"]
    assert ght["env"] == stack
    assert ght["log_collectors"] and ght["ntp_servers"] and ght["backup_servers"] and ght["admin_cidrs"]
    collectors = {h["addresses"]["log"] for h in hosts.values() if "log_collector" in h["groups"]}
    assert set(ght["log_collectors"]) == collectors
    assert all(p["offsite"] for p in ght["backup_policies"].values())


@pytest.mark.parametrize("stack", STACKS)
def test_inventory_agrees_with_the_outputs(stack: str, tmp_path: Path) -> None:
    outputs = plan_of(stack).outputs
    hosts_yml = write_inventory(outputs, tmp_path)
    assert hosts_yml == tmp_path / "hosts.yml"
    inventory = parse_yaml(hosts_yml.read_text())["all"]
    assert set(inventory["hosts"]) == set(outputs["hosts"])
    for name, host in outputs["hosts"].items():
        entry = inventory["hosts"][name]
        assert entry["ansible_host"] == name
        assert (entry["ght_zone"], entry["ght_tier"], entry["ght_address"], entry["ght_role"],
                entry["ght_data_class"]) == (host["zone"], host["tier"], host["address"], host["role"],
                                             host["data_class"])
        member_of = {g for g, spec in inventory["children"].items() if name in spec["hosts"]}
        assert member_of == set(host["groups"])
    assert inventory["vars"]["ght_env"] == stack
    assert inventory["vars"]["ght_log_collectors"] == outputs["ght"]["log_collectors"]
    assert inventory["vars"]["ansible_ssh_common_args"] == f"-F {tmp_path.resolve() / 'ssh_config'}"

    ssh = parse_ssh_config((tmp_path / "ssh_config").read_text())
    assert set(ssh) == set(outputs["hosts"])
    for name, host in outputs["hosts"].items():
        block = ssh[name]
        assert block["HostName"] == host["address"] and block["User"] == "ghtadmin"
        assert block["StrictHostKeyChecking"] == "yes" and block["HostKeyAlias"] == name
        assert block["UserKnownHostsFile"] == str(tmp_path.resolve() / "known_hosts")
        assert block.get("ProxyJump") == host["jump"]
    assert not known_hosts_filled(tmp_path)
    assert "console log" in (tmp_path / "known_hosts").read_text()


def test_lab_overrides_addresses_key_and_known_hosts(tmp_path: Path) -> None:
    outputs = plan_of("lab").outputs
    identity = tmp_path / "id_ed25519"
    lines = [f"{name} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{index:040d}" for index, name in enumerate(outputs["hosts"])]
    write_inventory(outputs, tmp_path / "inv", ssh_overrides={"bastion-01": {"HostName": "127.0.0.1", "Port": "2222"}},
                    identity_file=identity, known_hosts_lines=lines)
    ssh = parse_ssh_config((tmp_path / "inv" / "ssh_config").read_text())
    assert (ssh["bastion-01"]["HostName"], ssh["bastion-01"]["Port"]) == ("127.0.0.1", "2222")
    assert ssh["app-01"]["HostName"] == "10.40.2.10" and ssh["app-01"]["ProxyJump"] == "bastion-01"
    assert all(block["IdentityFile"] == str(identity.resolve()) for block in ssh.values())
    assert all(block["StrictHostKeyChecking"] == "yes" for block in ssh.values())
    assert known_hosts_filled(tmp_path / "inv")
    # A later run without keys keeps the keys an operator (or the lab) put there.
    write_inventory(outputs, tmp_path / "inv")
    assert (tmp_path / "inv" / "known_hosts").read_text().splitlines() == lines


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.pop("hosts"), "key hosts: missing or empty"),
        (lambda o: o.update(bastion="nobody"), "key bastion: 'nobody' is not one of the stack's hosts"),
        (lambda o: o["hosts"]["app-01"].pop("address"), "key hosts.app-01.address: missing"),
        (lambda o: o["hosts"]["app-01"].update(jump="ghost"), "key hosts.app-01.jump"),
        (lambda o: o["hosts"]["app-01"].update(groups=["Bad Group"]), "key hosts.app-01.groups"),
    ],
)
def test_bad_outputs_write_nothing(tmp_path: Path, mutate: Any, expected: str) -> None:
    outputs = copy.deepcopy(plan_of("lab").outputs)
    mutate(outputs)
    with pytest.raises(ConfigError, match=expected):
        write_inventory(outputs, tmp_path / "inv", source="outputs.json")
    assert not (tmp_path / "inv").exists()


def test_ssh_override_cannot_turn_host_key_checking_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="StrictHostKeyChecking"):
        write_inventory(plan_of("lab").outputs, tmp_path,
                        ssh_overrides={"app-01": {"StrictHostKeyChecking": "no"}})


def test_socle_inventory_from_saved_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(plan_of("prod").outputs))
    target = tmp_path / "prod"
    assert main(["inventory", "--stack", "prod", "--outputs", str(saved), "--output-dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"{len(plan_of('prod').outputs['hosts'])} hosts" in out and "known_hosts has no host key yet" in out
    assert parse_yaml((target / "hosts.yml").read_text())["all"]["vars"]["ght_env"] == "prod"


def test_socle_inventory_offline_plan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "--stack", "lab", "--output-dir", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["hosts"] == sorted(plan_of("lab").outputs["hosts"])
    assert report["groups"]["linux"] == 5 and report["known_hosts_filled"] is False


@pytest.mark.parametrize(("content", "expected"), [(None, "outputs file not found"), ("{nope", "not JSON"),
                                                   ("[1, 2]", "expected a JSON object")])
def test_socle_inventory_bad_outputs_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
                                          expected: str) -> None:
    saved = tmp_path / "outputs.json"
    if content is not None:
        saved.write_text(content)
    assert main(["inventory", "--stack", "prod", "--outputs", str(saved), "--output-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and str(saved) in err[0]
