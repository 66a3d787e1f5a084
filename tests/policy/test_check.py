"""``socle check`` end to end: the insecure-program corpus, bad inputs, waivers, output formats."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from ght_socle.cli import main
from ght_socle.policy.registry import implemented_policies

CORPUS = Path(__file__).resolve().parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]

# Each insecure program and the exact PSSI rules it breaks.
EXPECTED: dict[str, set[str]] = {
    "ssh-world": {"NET-003", "NET-004"},
    "db-floating-ip": {"NET-005"},
    "hds-volume-unencrypted": {"STO-001"},
    "public-container": {"STO-002"},
    "region-outside-eea": {"LOC-001"},
    "user-data-secrets": {"CMP-002"},
    "weak-vpn": {"NET-008", "STO-004"},
    "admin-pass": {"CMP-002"},
    "default-secgroup": {"NET-002"},
    "plaintext-user-password": {"IAM-007"},
    "hds-egress-anywhere": {"NET-006"},
    "hds-subnet-edge-router": {"NET-005"},
    "generated-keypair": {"CMP-006"},
    "rule-without-flow-id": {"NET-010"},
    "app-credential-unrestricted": {"IAM-006"},
    "compliant-dmz": set(),
}


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("socle: error:")]


def test_corpus_covers_every_program() -> None:
    assert {p.name for p in CORPUS.iterdir() if (p / "Pulumi.yaml").is_file()} == set(EXPECTED)
    assert sum(1 for rules in EXPECTED.values() if rules) >= 15


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_corpus_program_finds_exactly_its_rules(program: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_check(capsys, "--program", str(CORPUS / program), "--format", "json")
    findings = json.loads(out)
    assert {f["rule_id"] for f in findings} == EXPECTED[program]
    assert code == (1 if EXPECTED[program] else 0)
    for finding in findings:
        assert {"rule_id", "severity", "enforcement", "resource_type", "resource_name", "message"} <= set(finding)
        assert finding["enforcement"] == "mandatory" and not finding["waived"]


def test_text_report_groups_by_rule_with_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_check(capsys, "--program", str(CORPUS / "ssh-world"))
    assert code == 1
    assert out.index("NET-003 [critical, mandatory]") < out.index("NET-004 [high, mandatory]")
    assert "ssh-from-anywhere" in out and "fix:" in out
    assert "opens zone hds-app to the Internet" in out  # the rule's group was found through the mock IDs
    assert "2 mandatory violation(s)" in out and "Next:" in out
    assert "planning" in err  # progress goes to stderr


# --- bad input: exit 2 and one line ------------------------------------------------------------------

def _program(tmp_path: Path, body: str, config: str | None = None) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(body))
    if config is not None:
        (tmp_path / "Pulumi.dev.yaml").write_text(config)
    return tmp_path


def test_missing_pulumi_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_check(capsys, "--program", str(tmp_path))
    assert code == 2 and out == ""
    assert len(error_lines(err)) == 1 and "Pulumi.yaml" in err


def test_program_that_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _program(tmp_path, "raise RuntimeError('zone list missing')\n")
    code, _, err = run_check(capsys, "--program", str(tmp_path))
    assert code == 2
    [line] = error_lines(err)
    assert "__main__.py" in line and "zone list missing" in line


def test_broken_stack_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _program(tmp_path, "pass\n", config="config:\n  openstack:region: [unclosed\n")
    code, _, err = run_check(capsys, "--program", str(tmp_path))
    assert code == 2
    [line] = error_lines(err)
    assert "Pulumi.dev.yaml" in line


def test_missing_config_file_and_unknown_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and len(error_lines(err)) == 1 and "nope.yaml" in err
    code, _, err = run_check(capsys, "--stack", "no-such-stack")
    assert code == 2 and len(error_lines(err)) == 1 and "no-such-stack" in err


def test_bad_input_from_the_console_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ght_socle.cli", "check", "--program", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr


# --- waivers -----------------------------------------------------------------------------------------

def _waivers(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers:\n" + textwrap.indent(textwrap.dedent(entries), "  "))
    return path


# Waivers are bounded in time (at most 548 days ahead): the test's expiry follows today's date.
EXPIRES = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=90)).isoformat()
SSH_WAIVERS = f"""\
- rule: NET-003
  stack: dev
  resource: "ssh-from-*"
  justification: "Vendor maintenance window, source filtered upstream by the site firewall"
  approver: "RSSI"
  expires: {EXPIRES}
- rule: NET-004
  stack: dev
  policy: net-admin-ports-from-admin-only
  resource: "urn:pulumi:*::ssh-world::*"
  justification: "Same maintenance window as the NET-003 waiver"
  approver: "RSSI"
  expires: {EXPIRES}
"""
REASON = "justification: Vendor maintenance window, filtered upstream\n"


def test_waived_findings_are_shown_and_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    waivers = _waivers(tmp_path, SSH_WAIVERS)
    program = str(CORPUS / "ssh-world")
    code, out, _ = run_check(capsys, "--program", program, "--waivers", str(waivers), "--format", "json")
    findings = json.loads(out)
    assert code == 0
    assert {f["rule_id"] for f in findings} == {"NET-003", "NET-004"}
    assert all(f["waived"] and f["waiver"]["approver"] == "RSSI" for f in findings)
    code, out, _ = run_check(capsys, "--program", program, "--waivers", str(waivers))
    assert code == 0 and f"waived until {EXPIRES} by RSSI" in out and "0 mandatory violation(s)" in out


def test_partial_waiver_still_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    waivers = _waivers(tmp_path, SSH_WAIVERS.split("- rule: NET-004")[0])
    code, out, _ = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--waivers", str(waivers),
                             "--format", "json")
    assert code == 1
    assert {f["rule_id"]: f["waived"] for f in json.loads(out)} == {"NET-003": True, "NET-004": False}


def test_expired_waiver_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    waivers = _waivers(tmp_path, SSH_WAIVERS.replace(EXPIRES, "2020-01-31", 1))
    code, out, err = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--waivers", str(waivers))
    assert code == 2 and out == ""
    [line] = error_lines(err)
    assert "waivers.yaml" in line and "waiver #1 (NET-003)" in line and "key expires" in line and "expired" in line


@pytest.mark.parametrize(("entry", "where"), [
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  {REASON}  expires: {EXPIRES}\n", "key approver"),
    (f"- rule: NET-999\n  stack: dev\n  resource: x\n  {REASON}  approver: RSSI\n  expires: {EXPIRES}\n", "key rule"),
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  {REASON}  approver: RSSI\n  expires: soon\n", "key expires"),
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  {REASON}  approver: RSSI\n  expires: {EXPIRES}\n  owner: me\n",
     "key owner"),
    ("- just a string\n", "waiver #1"),
    # An approval is real: a stack, a justification that says something, an approver, a bounded expiry.
    (f"- rule: NET-003\n  resource: x\n  {REASON}  approver: RSSI\n  expires: {EXPIRES}\n", "key stack"),
    (f"- rule: NET-003\n  stack: ../prod\n  resource: x\n  {REASON}  approver: RSSI\n  expires: {EXPIRES}\n",
     "key stack"),
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  justification: TODO\n  approver: RSSI\n  expires: {EXPIRES}\n",
     "key justification"),
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  {REASON}  approver: RSSI\n  expires: 2099-12-31\n",
     "key expires"),
    (f"- rule: NET-003\n  stack: dev\n  resource: x\n  {REASON}  approver: RSSI\n  expires: 2027-02-30\n",
     "key expires"),
])
def test_malformed_waiver_exits_2(entry: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    waivers = _waivers(tmp_path, entry)
    code, _, err = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--waivers", str(waivers))
    assert code == 2
    [line] = error_lines(err)
    assert "waivers.yaml" in line and where in line


def test_shipped_waivers_are_valid_and_scoped_to_the_lab(catalog: object) -> None:
    """The shipped waivers load, and none can benefit preprod or prod: each is scoped to the lab's URNs."""
    from ght_socle.policy.waivers import load_waivers

    waivers = load_waivers(ROOT / "policies" / "waivers.yaml", catalog)  # type: ignore[arg-type]
    assert waivers, "the lab's combined log/backup server is waived explicitly"
    assert all(w.resource.startswith("urn:pulumi:lab::") and w.stacks == ("lab",) for w in waivers)


# --- machine formats ---------------------------------------------------------------------------------

def test_sarif_is_ready_for_code_scanning(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    output = tmp_path / "pssi.sarif"
    code, out, err = run_check(capsys, "--program", str(CORPUS / "weak-vpn"), "--format", "sarif",
                               "--output", str(output))
    assert code == 1 and "mandatory violation" in err and out == ""
    sarif = json.loads(output.read_text())
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == len(implemented_policies())
    rule_ids = [r["id"] for r in rules]
    assert len(set(rule_ids)) == len(rule_ids) and all(r["help"]["text"] for r in rules)
    assert run["results"]
    fingerprints = set()
    for result in run["results"]:
        assert result["ruleId"] in rule_ids and rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == "error" and result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert (ROOT / location["artifactLocation"]["uri"]).is_file()  # relative to the checkout
        assert location["region"]["startLine"] >= 1
        fingerprints.add(result["partialFingerprints"]["pssiFinding/v1"])
    assert len(fingerprints) == len(run["results"])
    # The finding points at the line declaring the resource.
    ike = next(r for r in run["results"] if "legacy-ike" in r["message"]["text"])
    uri = ike["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    line = ike["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert uri.endswith("weak-vpn/__main__.py") and "legacy-ike" in (ROOT / uri).read_text().splitlines()[line - 1]


def test_sarif_marks_waived_results_as_suppressed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--format", "sarif",
                             "--waivers", str(_waivers(tmp_path, SSH_WAIVERS)))
    results = json.loads(out)["runs"][0]["results"]
    assert code == 0 and results
    assert all(r["suppressions"][0]["kind"] == "external" and r["level"] == "note" for r in results)


def test_junit_has_one_case_per_policy_and_resource(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_check(capsys, "--program", str(CORPUS / "ssh-world"), "--format", "junit")
    suite = ET.fromstring(out)
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert code == 1
    assert {c.get("classname") for c in failed} == {"NET-003.net-no-world-ingress",
                                                    "NET-004.net-admin-ports-from-admin-only"}
    assert int(suite.get("failures", "0")) == 2
    assert int(suite.get("tests", "0")) == len(cases) == len(implemented_policies())


LOWERED_BY_RSSI = (f"    waiver: {{justification: 'Maintenance window agreed with the vendor', approver: RSSI, "
                   f"expires: '{EXPIRES}'}}\n")


def test_enforcement_levels_come_from_the_ght_settings(tmp_path: Path) -> None:
    settings = tmp_path / "ght-settings.yaml"
    settings.write_text(f"rules:\n  NET-003:\n    enforcement: advisory\n{LOWERED_BY_RSSI}"
                        f"  NET-004:\n    enforcement: disabled\n{LOWERED_BY_RSSI}")
    done = subprocess.run(
        [sys.executable, "-m", "ght_socle.cli", "check", "--program", str(CORPUS / "ssh-world"), "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, "SOCLE_SETTINGS": str(settings)})
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)
    assert [(f["rule_id"], f["enforcement"]) for f in findings] == [("NET-003", "advisory")]


@pytest.mark.parametrize("waiver", ["", "    waiver: {justification: TODO, approver: RSSI, expires: '2099-01-01'}\n"])
def test_lowering_a_critical_rule_needs_its_own_waiver(tmp_path: Path, waiver: str) -> None:
    settings = tmp_path / "ght-settings.yaml"
    settings.write_text(f"rules:\n  NET-003:\n    enforcement: disabled\n{waiver}")
    done = subprocess.run([sys.executable, "-m", "ght_socle.cli", "pssi", "validate", str(settings)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert str(settings) in line and "rule NET-003" in line


def test_secure_config_values_count_as_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A PSK read from a ``secure:`` config value passes; the same program with a literal fails."""
    body = """\
        import pulumi
        import pulumi_openstack as openstack

        psk = pulumi.Config().get("psk") or "typed-in-the-program"
        ike = openstack.vpnaas.IkePolicy("ike", ike_version="v2", encryption_algorithm="aes-256",
                                         auth_algorithm="sha256", pfs="group14")
        openstack.vpnaas.SiteConnection("site", ikepolicy_id=ike.id, ipsecpolicy_id="x", vpnservice_id="y",
                                        peer_address="192.0.2.1", peer_id="192.0.2.1", psk=psk)
        """
    region = ("config:\n  openstack:region: eu-fr-1\n"
              "  openstack:authUrl: https://identity.eu-fr-1.cloud.example.eu:5000/v3\n")
    program = _program(tmp_path, body, config=region + "  broken:psk:\n    secure: AAABAJm0dGVzdA==\n")
    code, out, _ = run_check(capsys, "--program", str(program), "--format", "json")
    assert (code, json.loads(out)) == (0, [])
    (program / "Pulumi.dev.yaml").write_text(region)
    code, out, _ = run_check(capsys, "--program", str(program), "--format", "json")
    assert code == 1
    assert {f["policy"] for f in json.loads(out)} == {"net-vpn-psk-secret", "sto-secret-inputs-are-secret"}


def test_sarif_points_at_the_configuration_line_declaring_the_role(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    body = """\
        import json
        import pulumi
        import pulumi_openstack as openstack

        roles = json.loads(pulumi.Config().require("roles"))
        for role, spec in roles.items():
            openstack.compute.Instance(f"{role}-01-vm", image_name="debian-12-ght-golden", admin_pass="x",
                                       metadata={"role": role, "zone": spec["zone"]})
        """
    config = ("config:\n  openstack:region: eu-fr-1\n"
              "  openstack:authUrl: https://identity.eu-fr-1.cloud.example.eu:5000/v3\n"
              "  broken:roles:\n    viewer_gateway:\n      zone: hds-app\n")
    program = _program(tmp_path, body, config=config)
    code, out, _ = run_check(capsys, "--program", str(program), "--format", "sarif")
    results = [r for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "CMP-002/cmp-no-admin-pass"]
    assert code == 1 and len(results) == 1
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("Pulumi.dev.yaml")
    assert location["region"]["startLine"] == 5  # "    viewer_gateway:"
