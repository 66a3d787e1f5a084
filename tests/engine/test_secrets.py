"""IPsec pre-shared keys as real encrypted stack secrets (passphrase provider, file backend)."""

from __future__ import annotations

import json
import secrets
import subprocess

import yaml
from engine_workspace import Workspace

from ght_socle.engine import Engine

SITE = "ch-nord"
KEY_PATH = f"ght-socle:sites.{SITE}.psk"
ANOTHER_KEY = secrets.token_urlsafe(32)


def _socle(workspace: Workspace, *args: str, stdin: str | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    return workspace.run(workspace.env["PULUMI_PYTHON_CMD"], "-m", "ght_socle.cli", *args, stdin=stdin, check=check)


def _everything_written(workspace: Workspace) -> str:
    texts = []
    for path in workspace.root.parent.rglob("*"):
        if path.is_file() and path.name != "passphrase":
            texts.append(path.read_bytes().decode(errors="replace"))
    return "\n".join(texts)


def test_set_psk_stores_a_ciphertext_the_engine_decrypts(engine: Engine, workspace: Workspace) -> None:
    psk = f"test-{secrets.token_urlsafe(24)}"
    result = _socle(workspace, "engine", "set-psk", "--stack", "preprod", SITE, stdin=psk + "\n")
    config_file = workspace.root / "stacks" / "config" / "Pulumi.preprod.yaml"
    document = yaml.safe_load(config_file.read_text())
    assert set(document["config"]["ght-socle:sites"][SITE]["psk"]) == {"secure"}
    assert document["encryptionsalt"].startswith("v1:")
    assert psk not in result.stdout + result.stderr
    assert psk not in _everything_written(workspace)  # not in the stack file, the state nor the plugins
    shown = workspace.run(str(engine.pulumi), "config", "get", "--stack", "preprod", "--path", KEY_PATH)
    assert shown.stdout.strip() == psk
    # The offline plan reads the stack file without the passphrase: the key stays a secret placeholder.
    plan = json.loads(_socle(workspace, "plan", "--stack", "preprod", "--format", "json").stdout)
    connections = [r for r in plan["resources"] if r["type"] == "openstack:vpnaas/siteConnection:SiteConnection"]
    assert len(connections) == 2 and {c["inputs"]["psk"] for c in connections} == {"[secret]"}
    assert psk not in json.dumps(plan)


def test_a_wrong_passphrase_reads_nothing(engine: Engine, workspace: Workspace) -> None:
    _socle(workspace, "engine", "set-psk", "--stack", "preprod", SITE, stdin=ANOTHER_KEY + "\n")
    wrong = workspace.root.parent / "wrong-passphrase"
    wrong.write_text(secrets.token_urlsafe(32))
    workspace.env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(wrong)
    shown = workspace.run(str(engine.pulumi), "config", "get", "--stack", "preprod", "--path", KEY_PATH,
                          check=False)
    assert shown.returncode != 0 and ANOTHER_KEY not in shown.stdout + shown.stderr


def test_set_psk_refuses_an_unknown_site_and_an_empty_key(workspace: Workspace) -> None:
    unknown = _socle(workspace, "engine", "set-psk", "--stack", "preprod", "nowhere", stdin="k\n", check=False)
    assert unknown.returncode == 2
    assert "Pulumi.preprod.yaml: key ght-socle:sites: unknown site 'nowhere'" in unknown.stderr
    empty = _socle(workspace, "engine", "set-psk", "--stack", "preprod", SITE, stdin="\n", check=False)
    assert empty.returncode == 2 and "empty pre-shared key" in empty.stderr


def test_set_psk_refuses_a_weak_key_before_touching_anything(engine: Engine, workspace: Workspace) -> None:
    config_file = workspace.root / "stacks" / "config" / "Pulumi.preprod.yaml"
    before = config_file.read_bytes()
    for weak, reason in (("short-key", "too short"), ("x" * 20 + " spaced key with blanks", "whitespace"),
                         ("é" * 40, "non-ASCII")):
        result = _socle(workspace, "engine", "set-psk", "--stack", "preprod", SITE, stdin=weak + "\n", check=False)
        assert result.returncode == 2, result.stderr
        assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert weak not in result.stderr
    assert config_file.read_bytes() == before
    stacks = workspace.run(str(engine.pulumi), "stack", "ls", "--json", check=False)
    assert "preprod" not in stacks.stdout  # no stack was created for a refused key
