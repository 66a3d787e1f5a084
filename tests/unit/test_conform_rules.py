"""Rule logic of the conformance suites on facts recorded from a real lab VM (app-01, unhardened).

The JSON was printed by the gather script on the lab's app-01 right after `socle lab up` (the
sysctl.d files, the firewall file's ruleset and the kernel's AppArmor list were added from a later
fresh app-01, when the gather started reading them); here the
rule functions of tests/conformance run on it (and on edited copies) without any host.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ght_socle.catalog import default_catalog
from ght_socle.conform import gather_script
from ght_socle.conform.facts import FactMissing, HostFacts, RuleFailed
from ght_socle.conform.plugin import RuleContext
from ght_socle.paths import project_root

RECORDED = Path(__file__).parent / "data" / "conform-facts-app-01-fresh.json"
APP_GROUPS = frozenset({"all", "linux", "linux_servers", "dpi_app", "zone_hds_app", "tier_t1"})


def suite(name: str) -> ModuleType:
    path = project_root() / "tests" / "conformance" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def verdict(module: str, function: str, rule_id: str, raw: dict[str, Any]) -> list[str]:
    """The problems a rule test reports on these facts ([] = pass)."""
    facts = HostFacts("app-01", APP_GROUPS, raw)
    rule = RuleContext(rule_id, default_catalog(), APP_GROUPS, {"ght_admin_cidrs": ["10.40.1.0/24"]})
    try:
        getattr(suite(module), function)(facts, rule)
    except RuleFailed as failed:
        return failed.problems
    return []


def test_recorded_facts_are_complete() -> None:
    data = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["errors"] == {}
    assert data["system"]["os_release"]["VERSION_ID"] == "12"


def hardened_sysctl_file(raw: dict[str, Any], name: str = "99-zz-ght-hardening.conf") -> None:
    """The role's file, as it writes it, among the recorded sysctl.d files of the host."""
    text = "".join(f"{key} = {value}\n" for key, value in default_catalog().param("OSH-002", "sysctl").items())
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", name, text])


def test_kernel_parameters_fail_on_debian_defaults_and_pass_once_set(raw: dict[str, Any]) -> None:
    problems = verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw)
    assert any(p.startswith("sysctl fs.protected_fifos = 1 (live), expected at least 2") for p in problems), problems
    for key, value in default_catalog().param("OSH-002", "sysctl").items():
        raw["sysctl"][key] = str(value)
    hardened_sysctl_file(raw)
    assert verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw) == []
    # Stricter than the PSSI on a monotonic key (level renforcé) passes; looser on an exact key fails.
    raw["sysctl"]["kernel.yama.ptrace_scope"] = "2"
    assert verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw) == []
    raw["sysctl"]["net.ipv4.ip_forward"] = "1"
    assert verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw) == [
        "sysctl net.ipv4.ip_forward = 1 (live), expected 0"]


def test_kernel_parameters_a_distribution_file_undoes_at_boot_fail_as_persisted(raw: dict[str, Any]) -> None:
    # The live values are right (the role loaded its file) but Debian's 99-protect-links.conf, recorded
    # on the VM, sorts after the file name the role used to write: at the next boot fifos go back to 1.
    for key, value in default_catalog().param("OSH-002", "sysctl").items():
        raw["sysctl"][key] = str(value)
    hardened_sysctl_file(raw, "90-ght-hardening.conf")
    assert verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw) == [
        "sysctl fs.protected_fifos = 1 persisted by /usr/lib/sysctl.d/99-protect-links.conf (last in boot order), "
        "expected at least 2"]
    raw["sysctl_d"] = [entry for entry in raw["sysctl_d"] if entry[1] != "90-ght-hardening.conf"]
    hardened_sysctl_file(raw)
    assert verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw) == []
    del raw["sysctl_d"][0]
    problems = verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw)
    missing = "sysctl kernel.yama.ptrace_scope is set by no sysctl.d file (persisted)"
    assert any(p.startswith(missing) for p in problems), problems


def test_apparmor_with_every_profile_unloaded_fails(raw: dict[str, Any]) -> None:
    # Recorded fresh: Debian's profiles in complain mode fail it; all in enforce mode pass it.
    for profiles in (raw["apparmor"]["profiles"], raw["apparmor"]["loaded"]):
        for name in profiles:
            profiles[name] = "enforce"
    assert verdict("test_osh", "test_osh_006_apparmor_enforced", "OSH-006", raw) == []
    # aa-teardown: the service stays active, the kernel's list is empty (and aa-status reports none).
    raw["apparmor"]["loaded"], raw["apparmor"]["profiles"] = {}, {}
    assert verdict("test_osh", "test_osh_006_apparmor_enforced", "OSH-006", raw) == [
        "no AppArmor profile loaded in enforce mode (live, /sys/kernel/security/apparmor/profiles lists 0)"]


def test_service_running_but_not_enabled_fails_as_persisted(raw: dict[str, Any]) -> None:
    raw["units"]["show"]["chrony.service"]["UnitFileState"] = "disabled"
    problems = verdict("test_log", "test_log_001_internal_time_sources", "LOG-001", raw)
    assert any(p.endswith("not started at boot, no time synchronisation after a reboot (persisted)")
               for p in problems), problems


def test_mount_options_are_checked_in_fstab_too(raw: dict[str, Any]) -> None:
    required = default_catalog().param("OSH-003", "mount_options")
    for table in ("live", "fstab"):
        for entry in raw["mounts"][table]:
            if entry["target"] in required:
                entry["options"] = ",".join(["rw", *required[entry["target"]]])
    assert verdict("test_osh", "test_osh_003_mount_options", "OSH-003", raw) == []
    tmp = next(entry for entry in raw["mounts"]["fstab"] if entry["target"] == "/tmp")
    tmp["options"] = "rw,nosuid,nodev"
    assert verdict("test_osh", "test_osh_003_mount_options", "OSH-003", raw) == [
        "/etc/fstab /tmp: rw,nosuid,nodev, missing noexec (persisted)"]


def test_firewall_file_loading_no_input_chain_fails_as_persisted(raw: dict[str, Any]) -> None:
    # Recorded fresh: Debian's /etc/nftables.conf loads (input policy accept) and nftables is disabled.
    problems = verdict("test_adm_net", "test_net_011_default_drop_firewall_loaded_at_boot", "NET-011", raw)
    assert "nft inet filter input: input policy is accept, not drop (persisted)" in problems, problems
    raw["nft_file"] = {"exists": True, "loads": False, "error": "Error: syntax error"}
    problems = verdict("test_adm_net", "test_net_011_default_drop_firewall_loaded_at_boot", "NET-011", raw)
    assert "/etc/nftables.conf does not load: Error: syntax error (persisted)" in problems


def test_a_section_that_could_not_be_gathered_is_an_error_not_a_pass(raw: dict[str, Any]) -> None:
    raw["sysctl"] = None
    raw["errors"]["sysctl"] = "RuntimeError: sysctl -a printed nothing"
    with pytest.raises(FactMissing, match="sysctl"):
        verdict("test_osh", "test_osh_002_kernel_parameters", "OSH-002", raw)


def test_empty_nftables_ruleset_fails_the_firewall_rules(raw: dict[str, Any]) -> None:
    problems = verdict("test_adm_net", "test_net_011_default_drop_firewall_loaded_at_boot", "NET-011", raw)
    assert "nft list ruleset: no base chain hooked on input (ruleset empty or flushed) (live)" in problems


def test_setuid_outside_the_allow_list_is_reported(raw: dict[str, Any]) -> None:
    raw["special_files"]["files"]["/usr/local/bin/backdoor"] = {
        "mode": "4755", "uid": "0", "gid": "0", "owner": "root", "group": "root", "type": "f"}
    problems = verdict("test_osh", "test_osh_007_setuid_allow_list", "OSH-007", raw)
    assert "setuid root:root 4755 /usr/local/bin/backdoor (not in the allow-list)" in problems
    allowed = set(default_catalog().param("OSH-007", "setuid_allowlist"))
    assert not any(path in p for p in problems for path in allowed)


def test_second_uid0_account_is_reported(raw: dict[str, Any]) -> None:
    raw["accounts"]["users"].append({"name": "toor", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash"})
    problems = verdict("test_iam", "test_iam_001_nominative_accounts_single_uid0", "IAM-001", raw)
    assert "/etc/passwd: toor has UID 0" in problems


def test_unexpected_listener_is_reported_and_loopback_ignored(raw: dict[str, Any]) -> None:
    raw["sockets"].append({"proto": "tcp", "address": "0.0.0.0", "port": "8099", "process": "python3"})
    problems = verdict("test_osh", "test_osh_004_listening_services", "OSH-004", raw)
    assert any(p.startswith("ss: tcp/8099 listening on 0.0.0.0") for p in problems), problems
    assert not any("127.0.0.1" in p or "::1" in p for p in problems)


def test_sshd_defaults_fail_the_ssh_policy(raw: dict[str, Any]) -> None:
    problems = verdict("test_adm_net", "test_adm_003_sshd_policy", "ADM-003", raw)
    assert "sshd -T: permitrootlogin is 'without-password', expected 'no' (persisted)" in problems


PSSI_ORIGINS = """APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
{clear}Unattended-Upgrade::Origins-Pattern {{
        "origin=Debian,codename=${{distro_codename}},label=Debian-Security";
        "origin=Debian,codename=${{distro_codename}}-security,label=Debian-Security";
}};
"""


def test_origins_with_braces_are_read_and_debians_list_must_be_cleared(raw: dict[str, Any]) -> None:
    # The recorded host has Debian's 50unattended-upgrades, whose list includes point releases.
    raw["texts"]["/etc/apt/apt.conf.d/52ght-unattended-upgrades"] = PSSI_ORIGINS.format(clear="")
    problems = verdict("test_upd_bck_wks_loc", "test_upd_002_unattended_security_upgrades", "UPD-002", raw)
    assert not any("lacks" in p for p in problems), problems  # "${distro_codename}" does not close the list
    assert any("also installs from origin=Debian,codename=${distro_codename},label=Debian" in p for p in problems)
    raw["texts"]["/etc/apt/apt.conf.d/52ght-unattended-upgrades"] = PSSI_ORIGINS.format(
        clear="#clear Unattended-Upgrade::Origins-Pattern;\n")
    problems = verdict("test_upd_bck_wks_loc", "test_upd_002_unattended_security_upgrades", "UPD-002", raw)
    assert not any("Origins-Pattern" in p for p in problems), problems


def test_collector_retention_reads_the_age_field_of_tmpfiles(raw: dict[str, Any]) -> None:
    raw["texts"]["/etc/tmpfiles.d/ght-log-retention.conf"] = "e /var/log/remote 0750 root adm 365d\n"
    assert verdict("test_log", "test_log_005_collector_retention", "LOG-005", raw) == []
    raw["texts"]["/etc/tmpfiles.d/ght-log-retention.conf"] = "e /var/log/remote 0750 root adm 30d\n"
    problems = verdict("test_log", "test_log_005_collector_retention", "LOG-005", raw)
    assert any("keeps 30 days of /var/log/remote" in p for p in problems), problems


def test_log_modes_hold_login_accounting_to_debians_modes_only(raw: dict[str, Any]) -> None:
    raw["log_files"] = {"/var/log/wtmp": "0664", "/var/log/btmp": "0660", "/var/log/lastlog": "0664",
                        "/var/log/wtmp.1": "0664", "/var/log/syslog": "0640"}
    problems = verdict("test_log", "test_log_004_local_logs", "LOG-004", raw)
    assert not any("/var/log/" in p and "mode" in p for p in problems), problems
    raw["log_files"].update({"/var/log/btmp": "0664", "/var/log/dpkg.log": "0644"})
    problems = verdict("test_log", "test_log_004_local_logs", "LOG-004", raw)
    assert "/var/log/btmp: mode 0664, expected at most 0660" not in problems  # message names the PSSI maximum
    assert any(p.startswith("/var/log/btmp: mode 0664") for p in problems), problems
    assert any(p.startswith("/var/log/dpkg.log: mode 0644") for p in problems), problems


def test_ssh_from_the_bastion_transit_address_is_administration(raw: dict[str, Any]) -> None:
    ruleset = [
        {"table": {"family": "inet", "name": "ght_filter"}},
        {"chain": {"family": "inet", "table": "ght_filter", "name": "input", "type": "filter", "hook": "input",
                   "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "ght_filter", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": "10.40.12.10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
            {"accept": None}]}}]
    raw["nft"] = {"installed": True, "ruleset": ruleset}
    facts = HostFacts("app-01", APP_GROUPS, raw)
    test = suite("test_adm_net").test_adm_001_ssh_only_from_admin_networks
    alone = RuleContext("ADM-001", default_catalog(), APP_GROUPS, {"ght_admin_cidrs": ["10.40.1.0/24"]})
    with pytest.raises(RuleFailed, match=re.escape("from 10.40.12.10/32")):
        test(facts, alone)
    with_bastion = RuleContext("ADM-001", default_catalog(), APP_GROUPS, {"ght_admin_cidrs": ["10.40.1.0/24"]},
                               ("10.40.1.10", "10.40.12.10"))
    test(facts, with_bastion)


def interface_settings(raw: dict[str, Any], multi_homed: bool = False) -> dict[str, str]:
    """OSH-012's keys for all, default and every interface of the recorded host, as the role writes them."""
    catalog = default_catalog()
    per_family = {"ipv4": dict(catalog.param("OSH-012", "ipv4_conf")), "ipv6": catalog.param("OSH-012", "ipv6_conf")}
    if multi_homed:
        per_family["ipv4"].update(catalog.param("OSH-012", "multi_homed_ipv4_conf"))
    settings = {}
    for family, keys in per_family.items():
        prefix = f"net.{family}.conf."
        names = {k[len(prefix):].rsplit(".", 1)[0] for k in raw["sysctl"] if k.startswith(prefix)}
        for name in names:
            settings.update({f"{prefix}{name}.{key}": str(value) for key, value in keys.items()})
    return settings


def test_interface_parameters_are_checked_on_every_interface_live_and_at_boot(raw: dict[str, Any]) -> None:
    interfaces = {k.split(".")[3] for k in raw["sysctl"] if k.startswith("net.ipv4.conf.")} - {"all", "default"}
    assert interfaces, "the recorded host has no interface"
    interface = sorted(interfaces)[-1]
    problems = verdict("test_osh", "test_osh_012_interface_network_parameters", "OSH-012", raw)
    assert any(p.startswith("sysctl net.ipv4.conf.default.accept_redirects = 1 (live)") for p in problems), problems
    settings = interface_settings(raw)
    raw["sysctl"].update(settings)
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zz-ght-hardening.conf",
                               "".join(f"{k} = {v}\n" for k, v in settings.items())])
    assert verdict("test_osh", "test_osh_012_interface_network_parameters", "OSH-012", raw) == []
    # all/default right, one interface left accepting redirects (accept_redirects is all OR interface).
    raw["sysctl"][f"net.ipv4.conf.{interface}.accept_redirects"] = "1"
    assert verdict("test_osh", "test_osh_012_interface_network_parameters", "OSH-012", raw) == [
        f"sysctl net.ipv4.conf.{interface}.accept_redirects = 1 (live), expected 0"]
    raw["sysctl"][f"net.ipv4.conf.{interface}.accept_redirects"] = "0"
    # A glob (systemd's 50-default.conf net.ipv4.conf.*.rp_filter = 2) never beats the explicit
    # per-interface lines the role writes; a later explicit line does undo it at boot.
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zzz-glob.conf", "net.ipv4.conf.*.rp_filter = 2\n"])
    assert verdict("test_osh", "test_osh_012_interface_network_parameters", "OSH-012", raw) == []
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zzz-late.conf", f"net.ipv4.conf.{interface}.rp_filter = 2\n"])
    problems = verdict("test_osh", "test_osh_012_interface_network_parameters", "OSH-012", raw)
    assert (f"sysctl net.ipv4.conf.{interface}.rp_filter = 2 persisted by /etc/sysctl.d/99-zzz-late.conf (last in "
            "boot order), expected 1") in problems, problems


def test_multi_homed_hosts_filter_reverse_paths_loosely(raw: dict[str, Any]) -> None:
    settings = interface_settings(raw, multi_homed=True)
    raw["sysctl"].update(settings)
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zz-ght-hardening.conf",
                               "".join(f"{k} = {v}\n" for k, v in settings.items())])
    facts = HostFacts("logbak-01", APP_GROUPS, raw)
    test = suite("test_osh").test_osh_012_interface_network_parameters
    two_zones = {"ght_addresses": {"log": "10.40.9.10", "backup": "10.40.8.10"}}
    test(facts, RuleContext("OSH-012", default_catalog(), APP_GROUPS, two_zones))
    with pytest.raises(RuleFailed, match=r"rp_filter = 2 \(live\), expected 1"):
        test(facts, RuleContext("OSH-012", default_catalog(), APP_GROUPS, {"ght_addresses": {"log": "10.40.9.10"}}))


def test_kernel_options_r9_fail_on_debian_defaults_and_pass_once_set(raw: dict[str, Any]) -> None:
    catalog = default_catalog()
    problems = verdict("test_osh", "test_osh_011_kernel_options", "OSH-011", raw)
    assert any(p.startswith("sysctl kernel.perf_event_max_sample_rate = ") for p in problems), problems
    expected = {k: str(v) for k, v in catalog.param("OSH-011", "sysctl").items()}
    expected["kernel.pid_max"] = str(catalog.param("OSH-011", "pid_max"))
    expected["net.ipv4.ip_local_port_range"] = "32768 65535"
    raw["sysctl"].update(expected)
    raw["sysctl"]["net.ipv4.ip_local_port_range"] = "32768\t65535"  # as sysctl -a prints it
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zz-ght-hardening.conf",
                               "".join(f"{k} = {v}\n" for k, v in expected.items())])
    assert verdict("test_osh", "test_osh_011_kernel_options", "OSH-011", raw) == []
    # Debian's 50-pid-max.conf style value in a file read after the role's one.
    raw["sysctl_d"].insert(0, ["/etc/sysctl.d", "99-zzz-pid.conf", "kernel.pid_max = 4194304\n"])
    assert verdict("test_osh", "test_osh_011_kernel_options", "OSH-011", raw) == [
        "sysctl kernel.pid_max = 4194304 persisted by /etc/sysctl.d/99-zzz-pid.conf (last in boot order), "
        "expected 65536"]


def test_log_rotation_recreating_logs_too_open_fails_log_004(raw: dict[str, Any]) -> None:
    # Recorded from a fresh VM: Debian's dpkg rotation recreates dpkg.log 0644; wtmp's 0664 is Debian's utmp mode.
    problems = verdict("test_log", "test_log_004_local_logs", "LOG-004", raw)
    assert "/etc/logrotate.d/dpkg: logrotate recreates its logs with mode 644, expected at most 0640" in problems
    assert not any(p.startswith(("/etc/logrotate.d/wtmp", "/etc/logrotate.d/btmp")) for p in problems), problems
    raw["texts"]["/etc/logrotate.d/dpkg"] = raw["texts"]["/etc/logrotate.d/dpkg"].replace("create 644", "create 0640")
    raw["texts"]["/etc/logrotate.d/alternatives"] = "/var/log/alternatives.log {\n\tcreate 600 root root\n}\n"
    problems = verdict("test_log", "test_log_004_local_logs", "LOG-004", raw)
    assert not any("logrotate recreates" in p for p in problems), problems


def test_audit_rules_are_checked_in_rules_d_too(raw: dict[str, Any]) -> None:
    watches = default_catalog().param("LOG-002", "audit_watch_paths")
    rules = [f"-w {path} -p wa -k ght" for path in watches] + [
        "-a always,exit -F arch=b64 -S init_module,finit_module -k modules", "-a always,exit -F arch=b64 -S mount",
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time",
        "-a always,exit -F arch=b64 -S execve -k exec"]
    raw["audit"]["rules"] = rules  # loaded now, in no file: lost when auditd starts again
    problems = verdict("test_log", "test_log_002_audit_rules", "LOG-002", raw)
    assert not any(p.startswith("auditctl -l:") for p in problems), problems
    assert f"/etc/audit/rules.d: no write watch on {watches[0]} (persisted)" in problems
    raw["texts"]["/etc/audit/rules.d/50-ght.rules"] = "\n".join(rules) + "\n-e 2\n"
    problems = verdict("test_log", "test_log_002_audit_rules", "LOG-002", raw)
    assert not any(p.startswith("/etc/audit/rules.d") for p in problems), problems


def test_running_sshd_is_read_from_its_key_exchange_and_none_authentication() -> None:
    # Recorded `ssh -vv` to the fresh app-01's sshd: the server's proposal, not the client's, is kept.
    recorded = (Path(__file__).parent / "data" / "ssh-vv-none-auth-app-01-fresh.txt").read_text(encoding="utf-8")
    offered, methods = gather_script.parse_ssh_probe(recorded)
    assert methods == ["publickey"]
    assert "hmac-sha1" in offered["macs"] and "ssh-ed25519" in offered["hostkeyalgorithms"]
    assert not any(name.startswith(("kex-strict-", "ext-info-")) for name in offered["kexalgorithms"])
    assert offered["hostkeyalgorithms"] == ["rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ssh-ed25519"]


def test_sshd_drift_says_whether_the_files_or_the_running_daemon_drifted(raw: dict[str, Any]) -> None:
    allowed = default_catalog().param("ADM-004", "macs")
    raw["files"]["/etc/ssh/ssh_host_dsa_key"] = {"exists": False}
    options = raw["sshd"]["options"]
    options["macs"] = [",".join(allowed)]
    options["ciphers"] = [",".join(default_catalog().param("ADM-004", "ciphers"))]
    options["kexalgorithms"] = [",".join(default_catalog().param("ADM-004", "kex_algorithms"))]
    live = raw["sshd_live"]["offered"]
    live["ciphers"], live["kexalgorithms"] = options["ciphers"][0].split(","), options["kexalgorithms"][0].split(",")
    live["macs"] = [*allowed, "hmac-sha1"]  # reloaded with a weak MAC, file changed back since
    assert verdict("test_adm_net", "test_adm_004_sshd_modern_crypto", "ADM-004", raw) == [
        "the running sshd on 127.0.0.1:22: macs offers hmac-sha1 (not in the allowed list) (live)"]
    live["macs"] = list(allowed)
    options["macs"] = [",".join([*allowed, "hmac-sha1"])]  # file changed, daemon not reloaded yet
    assert verdict("test_adm_net", "test_adm_004_sshd_modern_crypto", "ADM-004", raw) == [
        "sshd -T: macs offers hmac-sha1 (not in the allowed list) (persisted)"]
    raw["sshd_live"]["auth_methods"] = ["publickey", "password"]
    assert "the running sshd on 127.0.0.1:22 accepts password authentication (live)" in verdict(
        "test_adm_net", "test_adm_003_sshd_policy", "ADM-003", raw)


def test_running_sshd_that_could_not_be_asked_is_an_error(raw: dict[str, Any]) -> None:
    raw["errors"]["sshd_live"] = "RuntimeError: ssh to the running sshd on 127.0.0.1:22 printed no KEXINIT proposal"
    with pytest.raises(FactMissing, match="sshd_live"):
        verdict("test_adm_net", "test_adm_004_sshd_modern_crypto", "ADM-004", raw)


def test_blocked_modules_are_checked_by_the_next_load_and_the_loaded_list(raw: dict[str, Any]) -> None:
    # Recorded on the fresh app-01: modprobe -n -v would insert every module.
    problems = verdict("test_upd_bck_wks_loc", "test_wks_003_usb_storage_blocked", "WKS-003", raw)
    assert ("modprobe -n -v usb-storage: would load /lib/modules/6.1.0-56-amd64/kernel/drivers/usb/storage/"
            "usb-storage.ko: no install line blocks it (persisted)") in problems
    for dry_run in raw["system"]["modprobe"].values():
        dry_run["output"] = "install /bin/false"
    assert verdict("test_upd_bck_wks_loc", "test_wks_003_usb_storage_blocked", "WKS-003", raw) == []
    raw["system"]["modules"].append("usb_storage")
    raw["system"]["modprobe"]["usb-storage"]["output"] = ""  # modprobe does nothing for a loaded module
    assert verdict("test_upd_bck_wks_loc", "test_wks_003_usb_storage_blocked", "WKS-003", raw) == [
        "/proc/modules: usb-storage is loaded (live)"]
    raw["system"]["modprobe"]["uas"] = {"rc": 1, "output": "", "error": "modprobe: FATAL: Module uas not found in "
                                        "directory /lib/modules/6.1.0-56-amd64"}
    raw["system"]["modules"].remove("usb_storage")
    raw["system"]["modprobe"]["usb-storage"]["output"] = "install /bin/false"
    assert verdict("test_upd_bck_wks_loc", "test_wks_003_usb_storage_blocked", "WKS-003", raw) == []
    raw["system"]["modprobe"]["uas"]["error"] = "modprobe: ERROR: could not parse /etc/modprobe.d/x.conf"
    with pytest.raises(FactMissing, match="modprobe -n -v uas"):
        verdict("test_upd_bck_wks_loc", "test_wks_003_usb_storage_blocked", "WKS-003", raw)
