"""The project's OpenStack plugin, run by the real CLI, configures itself against the local cloud and reads it.

`pulumi import` runs no program, so it needs no language host: the engine starts the plugin,
configures it with the cloud's OS_* credentials (the Terraform provider authenticates with
Keystone), and the plugin reads the network from Neutron. The imported state holds what Neutron
answered. Without the built CLI and plugin this fails (never skips): run `make engine`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cloud_support import Cloud

from ght_socle.cloud import client_env, connect_as_stacks_user
from ght_socle.engine import EngineSettings, engine_environment, find_engine
from ght_socle.engine.provider import find_plugin, install_plugin
from ght_socle.engine.versions import OPENSTACK_VERSION

NETWORK_TYPE = "openstack:networking/network:Network"


def test_the_plugin_imports_ext_net_from_neutron(cloud: Cloud, tmp_path: Path) -> None:
    engine, plugin = find_engine(), find_plugin()
    assert engine is not None and plugin is not None, f"no pulumi CLI or openstack plugin {OPENSTACK_VERSION}: " \
                                                      "run `make engine`"
    credentials = client_env()
    conn = connect_as_stacks_user()
    ext_net = conn.network.find_network("Ext-Net", ignore_missing=False)

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: provider-check\nruntime: python\n")
    settings = EngineSettings.resolve(state=tmp_path / "state")
    env = {**os.environ, **engine_environment(engine, settings), **credentials}
    install_plugin(engine, plugin, env, progress=lambda _line: None)

    def pulumi(*args: str) -> str:
        result = subprocess.run([str(engine.pulumi), *args], cwd=project, env=env, capture_output=True, text=True,
                                timeout=600, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    pulumi("stack", "init", "check")
    pulumi("import", NETWORK_TYPE, "ext-net", ext_net.id, "--yes", "--generate-code=false", "--protect=false")
    resources = json.loads(pulumi("stack", "export"))["deployment"]["resources"]
    imported = next(r for r in resources if r["type"] == NETWORK_TYPE)
    assert imported["id"] == ext_net.id
    assert (imported["outputs"]["name"], imported["outputs"]["external"]) == ("Ext-Net", True)
    assert imported["outputs"]["region"] == credentials["OS_REGION_NAME"]
