"""Every input is untrusted: adversarial values in every field of the stack configuration and of the
stack outputs, and hostile command-line options, end either in a clean refusal (one line naming the
file and the key, exit 2) or in a safe artefact, checked with the real consumers: ``ssh -G`` reads
the generated ssh_config, a YAML parser the cloud-init user-data, ``ansible-inventory`` and
``ansible`` the inventory.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_plans import plan_of

from ght_socle.cli import main
from ght_socle.components.cloudinit import UserDataArgs, render_user_data
from ght_socle.config import load_stack_config, secret_paths_of
from ght_socle.config.outputs import stack_outputs
from ght_socle.errors import SocleError
from ght_socle.inventory import write_inventory
from ght_socle.plan import load_project
from ght_socle.plan import load_stack_config as read_stack_file
from ght_socle.trust.files import write_text
from ght_socle.trust.yamlio import dump_ansible_yaml, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SSH = shutil.which("ssh")

# What a hostile or careless user types: line breaks that add directives or keys, quotes, template
# markers, ssh_config tokens, path traversal, NUL, shell metacharacters, YAML syntax, a very long value.
ADVERSARIAL = [
    "x\nruncmd: [touch /tmp/pwned]",
    "10.0.0.1\n  ProxyCommand sh -c 'touch /tmp/pwned'",
    "ghtadmin\nHost *\n  StrictHostKeyChecking no",
    "{{ lookup('pipe', 'touch /tmp/pwned') }}",
    "{% raw %}x{% endraw %}",
    "%h%p%r",
    "../../../etc/cron.d/x",
    "a\x00b",
    "a\rb",
    "a\u2028b",
    "x" * 5000,
    "$(touch /tmp/pwned)",
    "`id`; rm -rf / | cat & echo",
    "it's \"quoted\"",
    "- item",
    "key: value",
    "# comment",
    "*",
    "!unsafe x",
    " leading space",
    "",
]

FREE_TEXT_SAFE = [value for value in ADVERSARIAL
                  if "\n" not in value and "{" not in value and len(value) < 500 and value.isprintable()]


# --- stack configuration -----------------------------------------------------------------------------

@functools.cache
def _lab_config() -> Any:
    return read_stack_file(load_project(), "lab")


def _lab_raw() -> tuple[dict[str, Any], set[str], set[str]]:
    config = _lab_config()
    return copy.deepcopy(config.parsed), set(config.secret_keys), set()


def _wire(parsed: dict[str, Any]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in parsed.items()}


def _set(parsed: dict[str, Any], key: str, path: list[Any], value: Any) -> None:
    if not path:
        parsed[key] = value
        return
    target = parsed[key]
    for part in path[:-1]:
        target = target[part] if part != "*" else next(iter(target.values()))
    last = path[-1]
    if last == "*":
        last = next(iter(target))
    target[last] = value


def _rename_first_key(parsed: dict[str, Any], key: str, new_name: str) -> None:
    mapping = parsed[key]
    first = next(iter(mapping))
    parsed[key] = {new_name if name == first else name: value for name, value in mapping.items()}


NS = "ght-socle"
CONFIG_FIELDS: list[tuple[str, list[Any]]] = [
    (f"{NS}:dns_domain", []), (f"{NS}:admin_user", []), (f"{NS}:admin_group", []),
    (f"{NS}:automation_group", []), (f"{NS}:apt_proxy", []), (f"{NS}:apt_mirror", []), (f"{NS}:ght_name", []),
    (f"{NS}:external_network", []), ("openstack:region", []), ("openstack:authUrl", []),
    (f"{NS}:admin_ssh_keys", [0]), (f"{NS}:roles", ["bastion", "flavor"]), (f"{NS}:roles", ["bastion", "image"]),
    (f"{NS}:roles", ["bastion", "owner"]), (f"{NS}:roles", ["bastion", "volume_type"]),
    (f"{NS}:roles", ["dpi_app", "hostname_prefix"]), (f"{NS}:roles", ["dpi_app", "zone"]),
    (f"{NS}:roles", ["dpi_app", "groups", 0]), (f"{NS}:flows", ["*", "description"]),
    (f"{NS}:backup", ["offline", "rotation"]), (f"{NS}:backup", ["offline", "operator_provides"]),
    (f"{NS}:backup", ["object_storage", "container_prefix"]),
]
RENAMED_KEYS = [f"{NS}:roles", f"{NS}:zones", f"{NS}:backup_policies", f"{NS}:flows"]
CLOUD_CONFIG_KEYS = {"hostname", "fqdn", "prefer_fqdn_over_hostname", "manage_etc_hosts", "ssh_pwauth",
                     "disable_root", "groups", "users", "write_files", "apt", "ntp"}


def _config_cases() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    cases: list[tuple[str, Callable[[dict[str, Any]], None]]] = []
    for key, path in CONFIG_FIELDS:
        for index, value in enumerate(ADVERSARIAL):
            def mutate(parsed: dict[str, Any], key: str = key, path: list[Any] = path, value: str = value) -> None:
                _set(parsed, key, path, value)
            cases.append((f"{key}{''.join(f'.{p}' for p in path)}#{index}", mutate))
    for key in RENAMED_KEYS:
        for index, value in enumerate(ADVERSARIAL[:10]):
            def rename(parsed: dict[str, Any], key: str = key, value: str = value) -> None:
                _rename_first_key(parsed, key, value)
            cases.append((f"{key}(name)#{index}", rename))
    return cases


def _assert_one_line_error(error: SocleError, file: str) -> None:
    text = str(error)
    assert "\n" not in text and "\r" not in text and file in text and "key " in text, text
    assert len(text) < 1200


def _check_user_data(config: Any) -> None:
    settings = config.settings
    for host in config.hosts:
        text = render_user_data(UserDataArgs(
            hostname=host.name, dns_domain=settings.dns_domain, admin_user=settings.admin_user,
            admin_groups=[settings.admin_group, settings.automation_group],
            automation_group=settings.automation_group, admin_keys=settings.admin_ssh_keys,
            apt_proxy=settings.apt_proxy, apt_mirror=settings.apt_mirror, ntp_servers=config.ntp_servers))
        assert text.startswith("#cloud-config\n")
        document = yaml.safe_load(text)
        assert set(document) <= CLOUD_CONFIG_KEYS
        assert document["fqdn"] == f"{host.name}.{settings.dns_domain}"
        assert [user["name"] for user in document["users"]] == [settings.admin_user]
        for item in document["write_files"]:
            assert len(item["content"].splitlines()) == 2


@pytest.mark.parametrize(("case", "mutate"), _config_cases(), ids=[c for c, _ in _config_cases()])
def test_stack_config_field_refused_or_safe(case: str, mutate: Callable[[dict[str, Any]], None],
                                            tmp_path: Path) -> None:
    parsed, secret_keys, _ = _lab_raw()
    mutate(parsed)
    try:
        config = load_stack_config(_wire(parsed), secret_keys, "Pulumi.lab.yaml", secret_paths=set())
    except SocleError as exc:
        _assert_one_line_error(exc, "Pulumi.lab.yaml")
        return
    _check_user_data(config)
    _check_inventory(stack_outputs(config), tmp_path)


def test_clear_text_psk_beside_a_secret_one_is_refused() -> None:
    """Secrecy is per value: one site's secret PSK does not cover another site's clear-text PSK."""
    block = {"ght-socle:sites": {"chu": {"psk": {"secure": "v1:abc"}}, "ch-nord": {"psk": "clear-text"}}}
    assert secret_paths_of(block) == {"ght-socle:sites.chu.psk"}
    parsed, secret_keys, _ = _lab_raw()
    parsed[f"{NS}:sites"] = {
        "chu": {"cidr": "10.1.0.0/16", "peer_address": "203.0.113.10", "psk": "offline-placeholder-1"},
        "ch-nord": {"cidr": "10.2.0.0/16", "peer_address": "203.0.113.20", "psk": "clear-text-psk-value"},
    }
    with pytest.raises(SocleError) as caught:
        load_stack_config(_wire(parsed), secret_keys | {f"{NS}:sites"}, "Pulumi.lab.yaml",
                          secret_paths=secret_paths_of(block) | {f"{NS}:sites.chu.psk"})
    assert "sites.ch-nord.psk" in str(caught.value) and "clear-text-psk-value" not in str(caught.value)


def test_psk_of_a_wrong_type_is_not_echoed() -> None:
    parsed, secret_keys, _ = _lab_raw()
    parsed[f"{NS}:sites"] = {"chu": {"cidr": "10.1.0.0/16", "peer_address": "203.0.113.10", "psk": 918273645}}
    with pytest.raises(SocleError) as caught:
        load_stack_config(_wire(parsed), secret_keys, "Pulumi.lab.yaml")
    assert "918273645" not in str(caught.value) and "psk" in str(caught.value)


# --- stack outputs -> inventory ----------------------------------------------------------------------

def _ssh_g(ssh_config: Path, host: str) -> dict[str, str]:
    assert SSH is not None
    done = subprocess.run([SSH, "-G", "-F", str(ssh_config), host], capture_output=True, text=True, timeout=30,
                          check=True)
    options: dict[str, str] = {}
    for line in done.stdout.splitlines():
        keyword, _, value = line.partition(" ")
        options.setdefault(keyword, value)
    return options


def _check_inventory(outputs: dict[str, Any], directory: Path) -> None:
    write_inventory(outputs, directory, source="outputs.json")
    hosts = outputs["hosts"]
    for name, host in hosts.items():
        options = _ssh_g(directory / "ssh_config", name)
        assert options["hostname"] == host["address"]
        assert options["user"] == host["ssh_user"]
        assert options["stricthostkeychecking"] == "true"
        assert options["hostkeyalias"] == name
        assert options["userknownhostsfile"] == str(directory.resolve() / "known_hosts")
        assert "proxycommand" not in options
        assert options.get("proxyjump", "none") in ({host["jump"]} if host.get("jump") else {"none"})
    inventory = parse_yaml((directory / "hosts.yml").read_text())
    assert set(inventory["all"]["hosts"]) == set(hosts)


OUTPUT_FIELDS: list[list[Any]] = [
    ["hosts", "app-01", "address"], ["hosts", "app-01", "ssh_user"], ["hosts", "app-01", "jump"],
    ["hosts", "app-01", "zone"], ["hosts", "app-01", "role"], ["hosts", "app-01", "groups", 0],
    ["hosts", "app-01", "tier"], ["hosts", "app-01", "data_class"], ["hosts", "app-01", "addresses", "hds-app"],
    ["hosts", "bastion-01", "address"], ["bastion"], ["ght", "name"], ["ght", "env"], ["ght", "dns_domain"],
    ["ght", "apt_proxy"], ["ght", "apt_mirror"], ["ght", "ntp_servers", 0], ["ght", "admin_cidrs", 0],
    ["ght", "backup_tiers", "offline", "operator_provides"], ["ght", "backup_tiers", "object_storage", "region"],
]


def _output_cases() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    cases: list[tuple[str, Callable[[dict[str, Any]], None]]] = []
    for path in OUTPUT_FIELDS:
        for index, value in enumerate(ADVERSARIAL):
            def mutate(outputs: dict[str, Any], path: list[Any] = path, value: str = value) -> None:
                target = outputs
                for part in path[:-1]:
                    target = target[part]
                target[path[-1]] = value
            cases.append((".".join(str(p) for p in path) + f"#{index}", mutate))
    for index, value in enumerate(ADVERSARIAL[:10]):
        def rename_host(outputs: dict[str, Any], value: str = value) -> None:
            outputs["hosts"][value] = outputs["hosts"].pop("wks-01")
        cases.append((f"hosts(name)#{index}", rename_host))
    cases.append(("hosts(list)", lambda outputs: outputs.update(hosts=list(outputs["hosts"]))))
    cases.append(("ght(list)", lambda outputs: outputs.update(ght=["x"])))
    cases.append(("hosts.app-01(list)", lambda outputs: outputs["hosts"].update({"app-01": ["x"]})))
    return cases


@pytest.mark.parametrize(("case", "mutate"), _output_cases(), ids=[c for c, _ in _output_cases()])
def test_stack_output_field_refused_or_safe(case: str, mutate: Callable[[dict[str, Any]], None],
                                            tmp_path: Path) -> None:
    # The generated ssh_config is read back by the real client: without it the check cannot run,
    # which is a failure, not a skip.
    assert SSH is not None, "the OpenSSH client is needed to read the generated ssh_config (make apt installs it)"
    outputs = copy.deepcopy(plan_of("lab").outputs)
    mutate(outputs)
    try:
        _check_inventory(outputs, tmp_path / "inv")
    except SocleError as exc:
        _assert_one_line_error(exc, "outputs.json")
        assert not (tmp_path / "inv").exists(), "a refused document must write nothing"


def test_accepted_free_text_reaches_ansible_verbatim(tmp_path: Path) -> None:
    """Free text the checks accept (quotes, %, $(), ../) is read back by ansible-inventory unchanged."""
    outputs = copy.deepcopy(plan_of("lab").outputs)
    notes = {f"note_{index}": value for index, value in enumerate(FREE_TEXT_SAFE)}
    outputs["ght"]["backup_tiers"]["offline"].update(notes)
    write_inventory(outputs, tmp_path, source="outputs.json")
    done = subprocess.run([str(BIN / "ansible-inventory"), "--list", "-i", str(tmp_path / "hosts.yml")],
                          capture_output=True, text=True, timeout=120, check=True)
    listing = json.loads(done.stdout)
    offline = listing["_meta"]["hostvars"]["app-01"]["ght_backup_tiers"]["offline"]

    def plain(value: Any) -> Any:
        return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value

    assert {key: plain(offline[key]) for key in notes} == notes
    assert set(listing["_meta"]["hostvars"]) == set(outputs["hosts"])


@pytest.mark.parametrize("unsafe", [True, False])
def test_ansible_never_evaluates_an_inventory_value(tmp_path: Path, unsafe: bool) -> None:
    """The emitter's ``!unsafe`` is what keeps a template in a value from running on the controller
    (the control run without it shows the test can fail)."""
    mark = tmp_path / "evaluated"
    probe = f"{{{{ lookup('pipe', 'touch {mark}') }}}}"
    data = {"all": {"vars": {"ght_probe": probe},
                    "hosts": {"h1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
    text = dump_ansible_yaml(data) if unsafe else yaml.safe_dump(data)
    (tmp_path / "hosts.yml").write_text(text)
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    done = subprocess.run([str(BIN / "ansible"), "h1", "-i", str(tmp_path / "hosts.yml"), "-m",
                           "ansible.builtin.debug", "-a", "var=ght_probe"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert mark.exists() is not unsafe


# --- command line and files --------------------------------------------------------------------------

def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("argv", [
    ["inventory", "--stack", "../../x"],
    ["inventory", "--stack", "lab/../../x"],
    ["plan", "--stack", "/etc/passwd"],
    ["check", "--stack", "a\nb"],
])
def test_stack_names_are_names(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "stack name" in _one_error_line(capsys)


def test_config_file_plans_as_its_own_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod = tmp_path / "Pulumi.prod.yaml"
    shutil.copy(ROOT / "stacks" / "config" / "Pulumi.prod.yaml", prod)
    assert main(["check", "--stack", "lab", "--config", str(prod)]) == 2
    assert "configuration of stack 'prod', not of stack 'lab'" in _one_error_line(capsys)
    renamed = tmp_path / "production.yaml"
    shutil.copy(prod, renamed)
    assert main(["check", "--config", str(renamed)]) == 2
    assert "cannot tell which stack" in _one_error_line(capsys)


def test_reports_are_not_written_through_symlinks_or_to_unwritable_places(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = str(ROOT / "tests" / "policy" / "corpus" / "ssh-world")
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = tmp_path / "report.sarif"
    link.symlink_to(victim)
    assert main(["check", "--program", program, "--format", "sarif", "--output", str(link)]) == 2
    assert "symbolic link" in _one_error_line(capsys) and victim.read_text() == "keep me\n"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["check", "--program", program, "--output", str(blocker / "report.txt")]) == 2
    assert str(blocker) in _one_error_line(capsys)


def test_writes_stay_inside_their_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "inventories").mkdir(parents=True)
    (root / "inventories" / "prod").symlink_to(outside)
    with pytest.raises(SocleError, match="symbolic link leads outside"):
        write_text(root / "inventories" / "prod" / "hosts.yml", "x", within=root)
    with pytest.raises(SocleError, match="outside"):
        write_text(root / ".." / "escaped.txt", "x", within=root)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()
    written = write_text(root / "inventories" / "lab" / "hosts.yml", "ok\n", within=root)
    assert written.read_text() == "ok\n"


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("Pulumi.lab.yaml", b"config:\n  ght-socle:dns_domain: \xff\xfe\n", "not UTF-8"),
    ("Pulumi.lab.yaml", b"a: &a [1,1,1,1,1,1,1,1,1,1]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n".encode() for i in range(7)),
     "expands to more than"),
    ("Pulumi.lab.yaml", b"config: " + b"[" * 200 + b"]" * 200 + b"\n", "nested deeper"),
])
def test_hostile_yaml_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes,
                                   expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["plan", "--stack", "lab", "--config", str(path)]) == 2
    line = _one_error_line(capsys)
    assert expected in line and str(path) in line


def test_unexpected_error_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import ght_socle.commands.pssi as pssi

    def broken(_args: Any) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(pssi, "cmd_list", broken)
    assert main(["pssi", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--debug" in err and "Traceback" not in err
    assert main(["--debug", "pssi", "list"]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(("override", "expected"), [
    ("OSH-008:\n    params:\n      session_timeout_seconds: 0", "out of range"),
    ("LOG-005:\n    params:\n      retention_days_min: -30", "out of range"),
    ("BCK-004:\n    params:\n      backup_repo_port: 70000", "out of range"),
    ("ADM-006:\n    params:\n      sudo_group: 'wheel ALL=(ALL) NOPASSWD: ALL, %x'", "not a single word"),
    ("ADM-003:\n    params:\n      allow_groups: ['{{ lookup(\"pipe\", \"id\") }}']", "not a single word"),
    ("LOG-005:\n    params:\n      retention_days_min: 2027-02-30", "expected an integer"),
    ("NET-003:\n    enforcement: disabled", "needs a waiver of its own"),
])
def test_settings_feeding_role_templates_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     override: str, expected: str) -> None:
    settings = tmp_path / "ght-settings.yaml"
    settings.write_text(f"rules:\n  {override}\n")
    assert main(["pssi", "validate", str(settings)]) == 2
    line = _one_error_line(capsys)
    assert expected in line and str(settings) in line


@pytest.mark.parametrize("host", ["../../escaped", "a/b", ".hidden"])
def test_hand_written_inventory_host_names_cannot_name_paths(tmp_path: Path, host: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {host: {}}}}))
    assert main(["conform", "--inventory", str(tmp_path)]) == 2
    assert "is not a host name" in _one_error_line(capsys)
