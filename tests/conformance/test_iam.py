"""Accounts and authentication (IAM-*) and workstation users (WKS-004)."""

from __future__ import annotations

import pytest

from ght_socle.conform.facts import HostFacts, fail_on, mode_exceeds
from ght_socle.conform.parsers import pam_module_args
from ght_socle.conform.plugin import RuleContext


def login_capable(facts: HostFacts, rule: RuleContext) -> list[dict[str, object]]:
    service_shells = set(rule.param("service_shells", "IAM-008"))
    return [u for u in facts.users if u["shell"] not in service_shells]


@pytest.mark.pssi("IAM-001")
def test_iam_001_nominative_accounts_single_uid0(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = [f"/etc/passwd: {u['name']} has UID 0" for u in facts.users if u["uid"] == 0 and u["name"] != "root"]
    declared = set(pssi_rule.param("managed_login_users")) | facts.group_members(pssi_rule.param("sudo_group",
                                                                                                 "ADM-006"))
    for user in login_capable(facts, pssi_rule):
        locked = facts.shadow.get(str(user["name"]), {}).get("locked", False)
        if user["name"] not in declared and not (locked and int(str(user["uid"])) < 1000):
            problems.append(f"/etc/passwd: undeclared account {user['name']} (uid {user['uid']}) "
                            f"has login shell {user['shell']}")
    fail_on(problems)


def pam_setting(facts: HostFacts, module: str, pam_file: str, conf_file: str, key: str) -> str | None:
    """A PAM module option: the module's arguments win over its configuration file."""
    for args in pam_module_args(facts.text(pam_file), module):
        if key in args:
            return args[key] or "set"
    return facts.key_values(conf_file, r"\s*=\s*").get(key)


@pytest.mark.pssi("IAM-002")
def test_iam_002_password_quality(facts: HostFacts, pssi_rule: RuleContext) -> None:
    password = facts.text("/etc/pam.d/common-password")
    problems = []
    if not pam_module_args(password, "pam_pwquality.so"):
        problems.append("/etc/pam.d/common-password: pam_pwquality.so not used")
    for key, param in (("minlen", "min_password_length"), ("minclass", "min_character_classes")):
        value = pam_setting(facts, "pam_pwquality.so", "/etc/pam.d/common-password",
                            "/etc/security/pwquality.conf", key)
        if value is None or not value.isdigit() or int(value) < int(pssi_rule.param(param)):
            problems.append(f"pwquality {key} = {value or '(unset)'}, expected >= {pssi_rule.param(param)}")
    history = [a for a in pam_module_args(password, "pam_pwhistory.so")]
    remember = history[0].get("remember") if history else None
    if remember is None:
        remember = facts.key_values("/etc/security/pwhistory.conf", r"\s*=\s*").get("remember") if history else None
    if not remember or not remember.isdigit() or int(remember) < int(pssi_rule.param("password_history")):
        problems.append(f"pam_pwhistory remember = {remember or '(not used)'}, "
                        f"expected >= {pssi_rule.param('password_history')}")
    fail_on(problems)


@pytest.mark.pssi("IAM-003")
def test_iam_003_lockout(facts: HostFacts, pssi_rule: RuleContext) -> None:
    auth = facts.text("/etc/pam.d/common-auth")
    problems = []
    modes = {key for args in pam_module_args(auth, "pam_faillock.so") for key in args}
    for needed in ("preauth", "authfail"):
        if needed not in modes:
            problems.append(f"/etc/pam.d/common-auth: no pam_faillock.so {needed} line")

    def setting(key: str) -> int | None:
        value = pam_setting(facts, "pam_faillock.so", "/etc/pam.d/common-auth", "/etc/security/faillock.conf", key)
        return int(value) if value and value.isdigit() else None

    deny, unlock, interval = setting("deny"), setting("unlock_time"), setting("fail_interval")
    if deny is None or not 0 < deny <= int(pssi_rule.param("faillock_deny")):
        problems.append(f"faillock deny = {deny}, expected 1..{pssi_rule.param('faillock_deny')}")
    # unlock_time 0 means "never unlock automatically": stricter than the threshold.
    if unlock is None or (unlock != 0 and unlock < int(pssi_rule.param("faillock_unlock_time"))):
        problems.append(f"faillock unlock_time = {unlock}, expected >= {pssi_rule.param('faillock_unlock_time')}")
    if interval is None or interval < int(pssi_rule.param("faillock_fail_interval")):
        problems.append(f"faillock fail_interval = {interval}, expected >= "
                        f"{pssi_rule.param('faillock_fail_interval')}")
    fail_on(problems)


HASH_SCHEMES = {"YESCRYPT": "$y$", "SHA512": "$6$", "SHA256": "$5$", "MD5": "$1$"}


@pytest.mark.pssi("IAM-004")
def test_iam_004_password_hashes(facts: HostFacts, pssi_rule: RuleContext) -> None:
    expected = str(pssi_rule.param("password_hash")).upper()
    problems = []
    method = facts.key_values("/etc/login.defs").get("ENCRYPT_METHOD", "(unset)")
    if method.upper() != expected:
        problems.append(f"/etc/login.defs: ENCRYPT_METHOD {method}, expected {expected}")
    scheme = HASH_SCHEMES.get(expected, "?")
    for user, entry in sorted(facts.shadow.items()):
        if entry["scheme"].startswith("$") and entry["scheme"] != scheme and not entry["locked"]:
            problems.append(f"/etc/shadow: {user} has a {entry['scheme']} hash, expected {scheme} ({expected})")
    for path in ("/etc/shadow", "/etc/gshadow"):
        info = facts.stat(path)
        if info is None:
            problems.append(f"{path} is missing")
        elif info["owner"] != "root" or info["group"] not in ("root", "shadow") or mode_exceeds(info["mode"], "0640"):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root:shadow 0640")
    fail_on(problems)


@pytest.mark.pssi("IAM-008")
def test_iam_008_service_accounts_no_shell(facts: HostFacts, pssi_rule: RuleContext) -> None:
    shells = set(pssi_rule.param("service_shells"))
    fail_on([f"/etc/passwd: service account {u['name']} (uid {u['uid']}) has shell {u['shell']}"
             for u in facts.users if 0 < u["uid"] < 1000 and u["shell"] not in shells])


@pytest.mark.pssi("WKS-004")
def test_wks_004_users_not_admins(facts: HostFacts, pssi_rule: RuleContext) -> None:
    declared_admins = set(pssi_rule.param("managed_login_users", "IAM-001"))
    problems = []
    for group in pssi_rule.param("privileged_groups"):
        for member in sorted(facts.group_members(group)):
            user = next((u for u in facts.users if u["name"] == member), None)
            if user and 1000 <= user["uid"] < 65534 and member not in declared_admins:
                problems.append(f"user {member} is in group {group}")
    fail_on(problems)
