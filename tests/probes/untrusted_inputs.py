"""Adversarial probe of the ``socle`` command line: hostile values in each kind of input, one table.

Not a test suite (tests/unit/test_untrusted_inputs.py is): a script an auditor runs against a
checkout to see, per probe, what the CLI does with the input. Each probe prepares files in a
temporary project copy, runs ``python -m ght_socle.cli`` there and classifies the outcome:

* ``refused``: exit 2 with one error line (the promised behaviour for bad input);
* ``safe``: accepted, and the artefact shows no trace of the injection;
* ``DANGEROUS``: the injection reached an artefact or a file was written where it must not be;
* ``silent``: bad input accepted without a word (a policy bypass);
* ``CRASH``: a traceback.

Usage: ``python tests/probes/untrusted_inputs.py [CHECKOUT]`` (default: this checkout). To probe
another checkout with this one's interpreter: ``PYTHONPATH=CHECKOUT/src python ... CHECKOUT``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parents[2]
INJECTED_SSH = ("proxycommand", "host *", "stricthostkeychecking no")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    workdir: Path


@dataclass
class Probe:
    field: str
    value: str
    argv: Callable[[Path], list[str]]
    prepare: Callable[[Path], None]
    danger: Callable[[Outcome], str | None]  # what went wrong when the CLI accepted the input
    accepted_is: str = "silent"  # how to call an exit 0 without danger: "silent" or "safe"


def _project(checkout: Path, into: Path) -> Path:
    root = into / "project"
    root.mkdir(parents=True)
    for name in ("Pulumi.yaml", "ansible.cfg"):
        shutil.copy(checkout / name, root / name)
    for name in ("policies", "stacks"):
        shutil.copytree(checkout / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "inventories").mkdir()
    return root


def _outputs(root: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    outputs = json.loads((root.parent / "base-outputs.json").read_text())
    mutate(outputs)
    (root.parent / "outputs.json").write_text(json.dumps(outputs))


def _stack_file(root: Path, name: str, mutate: Callable[[dict[str, Any]], None], source: str = "lab") -> None:
    data = yaml.safe_load((root / "stacks" / "config" / f"Pulumi.{source}.yaml").read_text())
    mutate(data["config"])
    (root.parent / name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _ssh_config_danger(outcome: Outcome) -> str | None:
    config = outcome.workdir / "project" / "inventories" / "probe" / "ssh_config"
    if not config.exists():
        return None
    lowered = config.read_text().lower()
    found = [marker for marker in INJECTED_SSH if marker in lowered]
    return f"ssh_config holds {found}" if found else None


def _inventory_danger(outcome: Outcome) -> str | None:
    hosts = outcome.workdir / "project" / "inventories" / "probe" / "hosts.yml"
    if not hosts.exists():
        return None
    for line in hosts.read_text().splitlines():
        if "{{" in line and "!unsafe" not in line:
            return "hosts.yml holds a template Ansible will evaluate"
        if "Acquire::" in line or "touch /tmp" in line:
            return "hosts.yml carries an injected apt/shell line"
    return None


def _user_data_danger(outcome: Outcome) -> str | None:
    try:
        plan = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        return None
    for resource in plan.get("resources", []):
        user_data = resource.get("inputs", {}).get("userData")
        if isinstance(user_data, str):
            try:
                document = yaml.safe_load(user_data)
            except yaml.YAMLError:
                return "user-data no longer parses (an injected line broke its structure)"
            if "runcmd" in document or "bootcmd" in document:
                return "user-data gained a runcmd/bootcmd"
            for item in document.get("write_files", []):
                if len(item["content"].splitlines()) != 2:
                    return f"{item['path']} gained lines"
            if any("\n" in str(u.get("name")) for u in document.get("users", [])):
                return "a user name holds a line break"
    return None


def _outside_danger(outcome: Outcome) -> str | None:
    escaped = [p for p in outcome.workdir.rglob("hosts.yml") if "project" not in p.relative_to(outcome.workdir).parts]
    return f"wrote {escaped[0]}" if escaped else None


def _victim_danger(outcome: Outcome) -> str | None:
    victim = outcome.workdir / "victim.txt"
    return "overwrote the symlink's target" if victim.read_text() != "keep me\n" else None


def _plan_as(stack: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        waived = re.search(r"\b([1-9]\d*) waived\b", outcome.stdout)
        return f"lab-only waiver applied to a {stack} resource" if waived else None
    return check


def _echo(secret: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        return "error message echoes the PSK" if secret in outcome.stderr else None
    return check


def _none(_outcome: Outcome) -> str | None:
    return None


def _set_host(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(outputs: dict[str, Any]) -> None:
        outputs["hosts"]["app-01"][field] = value
    return mutate


def _set_ght(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(outputs: dict[str, Any]) -> None:
        outputs["ght"][field] = value
    return mutate


INVENTORY = ["inventory", "--stack", "probe", "--outputs", "../outputs.json"]
PLAN = ["plan", "--stack", "lab", "--config", "../Pulumi.lab.yaml", "--format", "json"]
CHECK = ["check", "--stack", "lab", "--config", "../Pulumi.lab.yaml"]
GOOD_JUSTIFICATION = "Vendor appliance replaced next quarter; isolated by the site firewall"


def _waiver(root: Path, **changes: Any) -> None:
    entry = {"rule": "NET-003", "stack": "lab", "resource": "x", "justification": GOOD_JUSTIFICATION,
             "approver": "RSSI", "expires": "2027-03-31", **changes}
    (root.parent / "waivers.yaml").write_text(yaml.safe_dump({"waivers": [entry]}).replace("'2027-02-30'",
                                                                                           "2027-02-30"))


def _settings(root: Path, body: str) -> None:
    (root / "policies" / "ght-settings.yaml").write_text(body)


def _catalog_file(root: Path, extra: bytes) -> None:
    path = root / "policies" / "catalog" / "NET.yaml"
    path.write_bytes(path.read_bytes() + extra)


def _sites(psk_ch_nord: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        config["ght-socle:sites"] = {
            "chu": {"cidr": "10.1.0.0/16", "peer_address": "203.0.113.10", "psk": {"secure": "v1:Y2h1"}},
            "ch-nord": {"cidr": "10.2.0.0/16", "peer_address": "203.0.113.20", "psk": psk_ch_nord},
        }
    return mutate


BOMB = "rules:\n  OSH-002:\n    params:\n      sysctl:\n        l0: &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"        l{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8))


def probes() -> list[Probe]:
    def plain(argv: list[str]) -> Callable[[Path], list[str]]:
        return lambda _root: argv

    return [
        Probe("outputs hosts.app-01.address", "10.40.2.10\\n  ProxyCommand touch /tmp/p", plain(INVENTORY),
              lambda r: _outputs(r, _set_host("address", "10.40.2.10\n  ProxyCommand touch /tmp/p")),
              _ssh_config_danger),
        Probe("outputs hosts.app-01.ssh_user", "ghtadmin\\nHost *\\n StrictHostKeyChecking no", plain(INVENTORY),
              lambda r: _outputs(r, _set_host("ssh_user", "ghtadmin\nHost *\n  StrictHostKeyChecking no")),
              _ssh_config_danger),
        Probe("outputs hosts.app-01.jump", "bastion-01\\n ProxyCommand id", plain(INVENTORY),
              lambda r: _outputs(r, _set_host("jump", "bastion-01\n  ProxyCommand id")), _ssh_config_danger),
        Probe("outputs hosts.app-01.groups[0]", "../../x", plain(INVENTORY),
              lambda r: _outputs(r, _set_host("groups", ["../../x"])), _none),
        Probe("outputs ght.name", "{{ lookup('pipe','touch /tmp/p') }}", plain(INVENTORY),
              lambda r: _outputs(r, _set_ght("name", "{{ lookup('pipe','touch /tmp/p') }}")), _inventory_danger),
        Probe("outputs ght.apt_proxy", 'http://p\\nAcquire::http::Proxy "http://evil"', plain(INVENTORY),
              lambda r: _outputs(r, _set_ght("apt_proxy", 'http://p\nAcquire::http::Proxy "http://evil";')),
              _inventory_danger),
        Probe("outputs hosts", "a list", plain(INVENTORY),
              lambda r: _outputs(r, lambda o: o.update(hosts=list(o["hosts"]))), _none),
        Probe("CLI inventory --stack", "../../escaped", plain(["inventory", "--stack", "../../escaped", "--outputs",
                                                               "../outputs.json"]),
              lambda r: _outputs(r, lambda o: None), _outside_danger),
        Probe("inventories/probe (symlink)", "-> outside the project", plain(INVENTORY),
              lambda r: (_outputs(r, lambda o: None), (r.parent / "elsewhere").mkdir(),
                         (r / "inventories" / "probe").symlink_to(r.parent / "elsewhere")), _outside_danger),
        Probe("CLI check --output (symlink)", "report.txt -> victim.txt",
              plain(["check", "--program", "../prog", "--output", "../report.txt"]),
              lambda r: ((r.parent / "victim.txt").write_text("keep me\n"),
                         (r.parent / "report.txt").symlink_to(r.parent / "victim.txt"),
                         shutil.copytree(HERE / "tests" / "policy" / "corpus" / "ssh-world", r.parent / "prog")),
              _victim_danger),
        Probe("CLI check --output (unwritable)", "under a regular file",
              plain(["check", "--program", "../prog", "--output", "../file/report.txt"]),
              lambda r: ((r.parent / "file").write_text(""),
                         shutil.copytree(HERE / "tests" / "policy" / "corpus" / "ssh-world", r.parent / "prog")),
              _none),
        Probe("stack config dns_domain", "lab.ght.local\\nruncmd: [touch /tmp/p]", plain(PLAN),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", lambda c: c.update(
                  {"ght-socle:dns_domain": "lab.ght.local\nruncmd: [touch /tmp/p]"})), _user_data_danger, "safe"),
        Probe("stack config admin_user", "ghtadmin\\n  - name: evil", plain(PLAN),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", lambda c: c.update(
                  {"ght-socle:admin_user": "ghtadmin\n    - name: evil"})), _user_data_danger, "safe"),
        Probe("stack config apt_proxy", 'http://p";\\nAPT::Update::Pre-Invoke {"touch /tmp/p"', plain(PLAN),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", lambda c: c.update(
                  {"ght-socle:apt_proxy": 'http://p";\nAPT::Update::Pre-Invoke {"touch /tmp/p";'})),
              _user_data_danger, "safe"),
        Probe("stack config ght_name", "2027-02-30 (a date)", plain(CHECK),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", lambda c: c.update({"ght-socle:ght_name": "2027-02-30"})),
              _none, "safe"),
        Probe("stack config sites.ch-nord.psk", "clear text beside a secret PSK", plain(CHECK),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", _sites("clear-text-psk-8f2k")), _none),
        Probe("stack config sites.ch-nord.psk", "918273645 (a number)", plain(CHECK),
              lambda r: _stack_file(r, "Pulumi.lab.yaml", _sites(918273645)), _echo("918273645")),
        Probe("CLI check --config (no --stack)", "a prod-named copy of the lab file",
              plain(["check", "--config", "../Pulumi.prod.yaml"]),
              lambda r: _stack_file(r, "Pulumi.prod.yaml", lambda c: None), _plan_as("prod"), "safe"),
        Probe("waivers expires", "2027-02-30", plain(["check", "--program", "../prog", "--waivers", "../waivers.yaml"]),
              lambda r: (_waiver(r, expires="2027-02-30"),
                         shutil.copytree(HERE / "tests" / "policy" / "corpus" / "ssh-world", r.parent / "prog")),
              _none),
        Probe("waivers justification/expires", "'x', 2099-12-31",
              plain(["check", "--program", "../prog", "--waivers", "../waivers.yaml"]),
              lambda r: (_waiver(r, justification="x", expires="2099-12-31"),
                         shutil.copytree(HERE / "tests" / "policy" / "corpus" / "ssh-world", r.parent / "prog")),
              _none),
        Probe("settings OSH-008 session_timeout_seconds", "0", plain(["pssi", "validate"]),
              lambda r: _settings(r, "rules:\n  OSH-008:\n    params:\n      session_timeout_seconds: 0\n"), _none),
        Probe("settings NET-003 enforcement (critical)", "disabled, no waiver", plain(["pssi", "validate"]),
              lambda r: _settings(r, "rules:\n  NET-003:\n    enforcement: disabled\n"), _none),
        Probe("settings LOG-005 retention_days_min", "2027-02-30", plain(["pssi", "validate"]),
              lambda r: _settings(r, "rules:\n  LOG-005:\n    params:\n      retention_days_min: 2027-02-30\n"),
              _none),
        Probe("catalog NET.yaml", "invalid UTF-8 byte", plain(["pssi", "validate"]),
              lambda r: _catalog_file(r, b"\n# \xff\xfe\n"), _none),
        Probe("settings OSH-002 sysctl (dict parameter)", "alias bomb (10^8 values)", plain(["pssi", "validate"]),
              lambda r: _settings(r, BOMB), _none),
    ]


def classify(probe: Probe, outcome: Outcome) -> str:
    if "Traceback" in outcome.stderr:
        return "CRASH (traceback)"
    danger = probe.danger(outcome)
    if danger:
        return f"DANGEROUS: {danger}"
    errors = [line for line in outcome.stderr.splitlines() if "error" in line]
    if outcome.code == 2 and len(errors) == 1:
        return "refused (exit 2, one line)"
    if outcome.code in (0, 1):
        return f"{probe.accepted_is} (exit {outcome.code})"
    return f"exit {outcome.code}, {len(errors)} error lines"


def run(checkout: Path) -> list[tuple[str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="socle-probe-") as scratch:
        base = Path(scratch)
        reference = _project(checkout, base / "ref")
        done = subprocess.run([sys.executable, "-m", "ght_socle.cli", "plan", "--stack", "lab", "--format", "json"],
                              cwd=reference, capture_output=True, text=True, env={**os.environ,
                                                                                   "SOCLE_ROOT": str(reference)})
        outputs = json.loads(done.stdout)["outputs"]
        for index, probe in enumerate(probes()):
            work = base / f"p{index}"
            work.mkdir()
            root = _project(checkout, work)
            (work / "base-outputs.json").write_text(json.dumps(outputs))
            probe.prepare(root)
            env = {**os.environ, "SOCLE_ROOT": str(root), "SOCLE_STATE": str(work / "state")}
            completed = subprocess.run([sys.executable, "-m", "ght_socle.cli", *probe.argv(root)], cwd=root,
                                       capture_output=True, text=True, env=env, timeout=300)
            outcome = Outcome(completed.returncode, completed.stdout, completed.stderr, work)
            rows.append((probe.field, probe.value, classify(probe, outcome)))
            print(f"{probe.field:45} {probe.value[:50]:52} {rows[-1][2]}", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
    rows = run(checkout)
    print("| field | input | result |\n|---|---|---|")
    for field, value, result in rows:
        print(f"| {field} | `{value}` | {result} |")
    bad = sum(1 for _, _, result in rows if not result.startswith(("refused", "safe")))
    print(f"\n{len(rows)} probes, {bad} not refused or safe")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
