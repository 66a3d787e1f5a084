"""The control plane answers for real: what the stacks look up exists, seen by the stacks' own user.

Order matters: the last tests take the cloud down, check nothing is left, then make an `up` fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import openstack
import pytest
from cloud_support import Cloud, socle
from openstack import exceptions
from openstack.config import OpenStackConfig

from ght_socle.cloud import CLOUD_NAME, client_env, clouds_yaml, connect_as_stacks_user
from ght_socle.cloud import processes as cloud_processes
from ght_socle.cloud.requirements import read_needs, stack_config_files
from ght_socle.cloud.services import CONTROL_PLANE, GLANCE, KEYSTONE

SERVICE_TYPES = {"identity", "image", "placement", "compute", "network", "volumev3"}


def _status(*args: str) -> tuple[int, dict[str, Any], str]:
    result = socle("cloud", "status", "--format", "json", *args, timeout=120)
    return result.returncode, json.loads(result.stdout), result.stderr


def _from_clouds_yaml() -> Any:
    config = OpenStackConfig(config_files=[str(clouds_yaml())], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(cloud=CLOUD_NAME))


def _from_client_env() -> Any:
    return connect_as_stacks_user()


def test_up_prints_how_to_use_it_and_never_the_password(cloud: Cloud) -> None:
    out = cloud.first_up.stdout + cloud.first_up.stderr
    assert f"OS_CLIENT_CONFIG_FILE={cloud.layout.clouds_yaml} OS_CLOUD={CLOUD_NAME}" in out
    assert client_env()["OS_PASSWORD"] not in out
    for private in (cloud.layout.clouds_yaml, cloud.layout.openrc, cloud.layout.secrets_file):
        assert private.stat().st_mode & 0o077 == 0, private


@pytest.mark.parametrize("connect", [_from_clouds_yaml, _from_client_env], ids=["clouds.yaml", "client_env"])
def test_the_stacks_user_finds_what_the_stacks_look_up(cloud: Cloud, connect: Any) -> None:
    needs = read_needs(stack_config_files())
    conn = connect()
    for name in needs.images:
        image = conn.image.find_image(name, ignore_missing=False)
        assert image.status == "active" and image.disk_format == "qcow2"
    for name in needs.external_networks:
        network = conn.network.find_network(name, ignore_missing=False)
        assert network.is_router_external
        assert network.subnet_ids
    assert set(needs.flavors) <= {flavor.name for flavor in conn.compute.flavors()}
    b3_8 = conn.compute.find_flavor("b3-8", ignore_missing=False)
    assert (b3_8.vcpus, b3_8.ram) == (needs.flavors["b3-8"].vcpus, needs.flavors["b3-8"].ram_mib)
    assert needs.volume_types <= {volume_type.name for volume_type in conn.block_storage.types()}


def test_the_catalog_has_every_service_in_the_region_on_loopback(cloud: Cloud) -> None:
    conn = _from_client_env()
    catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
    assert {entry["type"] for entry in catalog} >= SERVICE_TYPES
    for entry in catalog:
        for endpoint in entry["endpoints"]:
            assert endpoint["region_id"] == "eu-fr-1"
            assert endpoint["url"].startswith("https://127.0.0.1:")


def test_every_api_is_served_over_tls_that_only_the_clouds_authority_vouches_for(cloud: Cloud) -> None:
    trusted = ssl.create_default_context(cafile=client_env()["OS_CACERT"])
    system_trust = ssl.create_default_context()
    for service in CONTROL_PLANE:
        url = service.url(service.health_path)
        assert url.startswith("https://127.0.0.1:")
        assert cloud_processes.http_answers(url, context=trusted), url
        assert not cloud_processes.http_answers(url, context=system_trust), f"{url} verified without the cloud's CA"
        assert not cloud_processes.http_answers(f"http://127.0.0.1:{service.port}{service.health_path}"), \
            f"plain HTTP answered on {service.name}'s public port"
    # The services' own listeners are on loopback only.
    listening = _listening_addresses()
    for service in CONTROL_PLANE:
        assert listening.get(service.backend_port) == "127.0.0.1", (service.name, listening.get(service.backend_port))
        assert listening.get(service.port) == "127.0.0.1", (service.name, listening.get(service.port))


def _listening_addresses() -> dict[int, str]:
    """Port -> IPv4 address of each socket in LISTEN state (/proc/net/tcp)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            address, port = local.split(":")
            found[int(port, 16)] = socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return found


def test_the_stacks_user_is_not_an_admin(cloud: Cloud) -> None:
    conn = _from_client_env()
    with pytest.raises(exceptions.ForbiddenException):
        conn.compute.create_flavor(name="not-allowed", vcpus=1, ram=512, disk=1)


def test_a_second_up_reuses_every_process(cloud: Cloud) -> None:
    _, before, _ = _status()
    result = socle("cloud", "up", "--control-plane")
    assert result.returncode == 0, result.stderr
    assert f"(0 started, {len(CONTROL_PLANE) + 2} reused)" in result.stdout  # + MariaDB and the TLS front
    code, after, _ = _status()
    assert code == 0
    assert {p["name"]: p["pid"] for p in after["processes"]} == {p["name"]: p["pid"] for p in before["processes"]}


def test_status_names_a_killed_service_and_its_log_then_up_restarts_it(cloud: Cloud) -> None:
    _, before, _ = _status()
    glance = next(p for p in before["processes"] if p["name"] == "glance")
    os.killpg(glance["pid"], signal.SIGKILL)
    result = socle("cloud", "status", timeout=120)
    assert result.returncode == 1
    assert f"glance is dead: see {glance['log']}" in result.stderr
    restarted = socle("cloud", "up", "--control-plane")
    assert restarted.returncode == 0, restarted.stderr
    assert "(1 started," in restarted.stdout
    code, after, _ = _status()
    assert code == 0
    assert next(p for p in after["processes"] if p["name"] == "glance")["pid"] != glance["pid"]


def test_down_leaves_no_process_and_no_listening_port(cloud: Cloud) -> None:
    _, before, _ = _status()
    pids = [p["pid"] for p in before["processes"]]
    result = socle("cloud", "down", timeout=300)
    assert result.returncode == 0, result.stderr
    assert all(not cloud_processes.group_members(pid) for pid in pids)
    assert not {service.port for service in CONTROL_PLANE} & cloud_processes.listening_ports()
    assert not {service.backend_port for service in CONTROL_PLANE} & cloud_processes.listening_ports()
    assert not cloud.layout.mysql_socket.exists() or not cloud_processes.group_members(pids[0])
    code, after, _ = _status()
    assert code == 1 and after["processes"] == []


def test_a_failed_up_stops_what_it_started(cloud: Cloud) -> None:
    # Another program holds Glance's own port: `up` starts MariaDB, the TLS front and Keystone, then
    # must fail and stop all three.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", GLANCE.backend_port))
        squatter.listen()
        result = socle("cloud", "up", "--control-plane")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("socle: error:")]
    assert errors == [f"socle: error: glance: port 127.0.0.1:{GLANCE.backend_port} is already in use by another "
                      "program"]
    assert "stopping what it started (mariadb, tls-front, keystone)" in result.stderr
    code, after, _ = _status()
    assert code == 1 and after["processes"] == []
    assert KEYSTONE.port not in cloud_processes.listening_ports()
