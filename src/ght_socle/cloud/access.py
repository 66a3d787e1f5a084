"""How clients reach the local cloud: a clouds.yaml, an openrc and the OS_* environment.

All three authenticate as the stacks' user in the stacks' project. They hold its password, so they
are written 0600 in the state directory; nothing prints it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from openstack.connection import Connection

from ght_socle.cloud.layout import CLOUD_NAME, Layout
from ght_socle.cloud.render import Secrets, write_private
from ght_socle.cloud.seed import STACKS_PROJECT, STACKS_USER
from ght_socle.cloud.services import KEYSTONE
from ght_socle.cloud.tls import TlsFiles
from ght_socle.errors import SocleError


def environment(password: str, region: str, authority: Path) -> dict[str, str]:
    return {
        "OS_AUTH_URL": KEYSTONE.url("/v3"),
        # The local cloud's own certificate authority (its TLS front); read by openstacksdk, the
        # OpenStack client and the Terraform-based Pulumi provider alike.
        "OS_CACERT": str(authority),
        "OS_AUTH_TYPE": "password",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": STACKS_USER,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": STACKS_PROJECT,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": region,
        "OS_INTERFACE": "public",
    }


def write_client_files(layout: Layout, passwords: Secrets, region: str) -> None:
    env = environment(passwords.stacks, region, TlsFiles.of(layout).authority)
    cloud = {"auth": {"auth_url": env["OS_AUTH_URL"], "username": STACKS_USER, "password": passwords.stacks,
                      "project_name": STACKS_PROJECT, "user_domain_name": "Default",
                      "project_domain_name": "Default"},
             "auth_type": "password", "region_name": region, "interface": "public", "identity_api_version": 3,
             "cacert": env["OS_CACERT"]}
    write_private(layout, layout.clouds_yaml, yaml.safe_dump({"clouds": {CLOUD_NAME: cloud}}, sort_keys=False))
    lines = ["# The local cloud (socle cloud up): the ght-socle stacks' user. Lab only."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    write_private(layout, layout.openrc, "\n".join(lines) + "\n")


def client_env(layout: Layout | None = None) -> dict[str, str]:
    """The OS_* environment of the running local cloud (raises a one-line error when there is none)."""
    layout = layout or Layout.default()
    if not layout.secrets_file.exists() or not layout.state_file.exists():
        raise SocleError("no local cloud: run `socle cloud up --control-plane` first", file=layout.root)
    secrets = Secrets.load_or_create(layout)
    region = json.loads(layout.state_file.read_text()).get("region")
    if not isinstance(region, str):
        raise SocleError("no region recorded", file=layout.state_file)
    return environment(secrets.stacks, region, TlsFiles.of(layout).authority)


def connect_as_stacks_user(layout: Layout | None = None) -> Connection:
    """An openstacksdk connection of the stacks' user to the running local cloud, its authority trusted."""
    from ght_socle.cloud.seed import connect

    env = client_env(layout)
    return connect(env["OS_AUTH_URL"], env["OS_USERNAME"], env["OS_PASSWORD"], env["OS_PROJECT_NAME"],
                   env["OS_REGION_NAME"], Path(env["OS_CACERT"]))
