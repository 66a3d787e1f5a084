"""Keystone's catalog and the content the stacks expect, created through the real APIs (openstacksdk).

Every step looks the object up first and creates it only when missing, so a second ``up`` changes
nothing. Seeded: the ``service`` project and one user per service, the catalog of region(s) the
stacks name, the project and user the stacks run as, every flavor, image, external network and
volume type the stack configs name.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the OpenStack SDK is the `cloud` extra: imported when a cloud is really reached
    from openstack.connection import Connection
    from openstack.identity.v3._proxy import Proxy as IdentityV3
    from openstack.image.v2._proxy import Proxy as ImageV2

from ght_socle.cloud.layout import Layout
from ght_socle.cloud.render import EXTERNAL_PHYSNET, Secrets
from ght_socle.cloud.requirements import StackNeeds
from ght_socle.cloud.services import ApiService
from ght_socle.errors import SocleError

SERVICE_PROJECT = "service"
STACKS_PROJECT = "ght-socle"
STACKS_USER = "ght-socle"
STACKS_ROLES = ("member",)
# Documentation ranges (RFC 5737): addresses the external networks hand out never leave the host.
EXTERNAL_SUBNETS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24")
FALLBACK_IMAGE_SIZE = "1G"
# A hung service fails `up` with its name instead of blocking it (an image upload stays well below this).
API_TIMEOUT_SECONDS = 300


def connect(identity_url: str, username: str, password: str, project: str, region: str,
            authority: Path) -> Connection:
    """A connection from explicit values only (neither clouds.yaml nor OS_* of the caller).

    ``authority``: the certificate authority the local cloud's TLS front is verified with.
    """
    import openstack

    return openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="password", cacert=str(authority),
                             auth={"auth_url": identity_url, "username": username, "password": password,
                                   "project_name": project, "user_domain_name": "Default",
                                   "project_domain_name": "Default"},
                             region_name=region, interface="public", identity_api_version="3",
                             image_api_version="2", api_timeout=API_TIMEOUT_SECONDS)


def _identity(conn: Connection) -> IdentityV3:
    # connect() asks for identity v3 and image v2 (the SDK types its proxies as the union of versions).
    return cast("IdentityV3", conn.identity)


def _image(conn: Connection) -> ImageV2:
    return cast("ImageV2", conn.image)


def register_services(conn: Connection, services: tuple[ApiService, ...], passwords: Secrets,
                      regions: list[str]) -> None:
    """The service project, one admin user per service, and each service's endpoints."""
    project = _project(conn, SERVICE_PROJECT, "Service users of the local cloud")
    admin_role = _role(conn, "admin")
    for service in services:
        if not service.catalog:
            continue
        user = _user(conn, service.name, passwords.services[service.name], project)
        _identity(conn).assign_project_role_to_user(project, user, admin_role)
        for entry in service.catalog:
            registered = next((s for s in _identity(conn).services() if s.type == entry.type and s.name == entry.name),
                              None)
            if registered is None:
                registered = _identity(conn).create_service(name=entry.name, type=entry.type, enabled=True)
            existing = {(e.interface, e.region_id): e for e in _identity(conn).endpoints(service_id=registered.id)}
            url = service.url(entry.path)
            for region in regions:
                for interface in ("public", "internal", "admin"):
                    endpoint = existing.get((interface, region))
                    if endpoint is None:
                        _identity(conn).create_endpoint(service_id=registered.id, interface=interface,
                                                      url=url, region_id=region)
                    elif endpoint.url != url:  # e.g. registered before the TLS front existed
                        _identity(conn).update_endpoint(endpoint, url=url)


def seed_stack_content(conn: Connection, needs: StackNeeds, passwords: Secrets, layout: Layout,
                       image_file: Callable[[Path], str], progress: Callable[[str], None]) -> str | None:
    """Project, user, flavors, volume types, external networks and images; the image source if one was made."""
    project = _project(conn, STACKS_PROJECT, "Project the ght-socle stacks deploy into")
    user = _user(conn, STACKS_USER, passwords.stacks, project)
    for role_name in STACKS_ROLES:
        role = _role(conn, role_name)
        _identity(conn).assign_project_role_to_user(project, user, role)
    # One listing per kind rather than one lookup per name: each API call costs a token validation.
    flavors = {flavor.name for flavor in conn.compute.flavors()}
    for flavor in sorted(needs.flavors.values(), key=lambda f: f.name):
        if flavor.name not in flavors:
            conn.compute.create_flavor(name=flavor.name, vcpus=flavor.vcpus, ram=flavor.ram_mib,
                                       disk=flavor.disk_gb, is_public=True)
    volume_types = {volume_type.name for volume_type in conn.block_storage.types()}
    for volume_type in sorted(needs.volume_types):
        if volume_type not in volume_types:
            conn.block_storage.create_type(name=volume_type, is_public=True)
    for index, network_name in enumerate(sorted(needs.external_networks)):
        _external_network(conn, network_name, index)
    source = None
    for image_name in sorted(needs.images):
        image = next(iter(_image(conn).images(name=image_name)), None)
        if image is not None and image.status == "active":
            continue
        if image is not None:
            _image(conn).delete_image(image)
        progress(f"uploading image {image_name} into Glance")
        with tempfile.TemporaryDirectory(dir=layout.data) as scratch:
            disk = Path(scratch) / "image.qcow2"
            source = image_file(disk)
            _image(conn).create_image(name=image_name, filename=str(disk), disk_format="qcow2",
                                    container_format="bare", visibility="public", wait=True,
                                    meta={"ght_socle_source": source})
    return source


def _role(conn: Connection, name: str) -> Any:
    role = _identity(conn).find_role(name)
    if role is None:
        raise SocleError(f"keystone has no role {name!r}: its bootstrap did not complete")
    return role


def _project(conn: Connection, name: str, description: str) -> Any:
    project = _identity(conn).find_project(name, domain_id="default")
    return project or _identity(conn).create_project(name=name, domain_id="default", description=description)


def _user(conn: Connection, name: str, password: str, project: Any) -> Any:
    user = _identity(conn).find_user(name, domain_id="default")
    if user is None:
        return _identity(conn).create_user(name=name, password=password, domain_id="default",
                                         default_project_id=project.id)
    return user


def _external_network(conn: Connection, name: str, index: int) -> None:
    if index >= len(EXTERNAL_SUBNETS):
        raise SocleError(f"the local cloud has addresses for {len(EXTERNAL_SUBNETS)} external networks, "
                         f"not {index + 1}")
    network = next(iter(conn.network.networks(name=name)), None)
    if network is None:
        network = conn.network.create_network(name=name, is_router_external=True, is_shared=False,
                                              provider_network_type="flat",
                                              provider_physical_network=EXTERNAL_PHYSNET)
    if not network.subnet_ids:
        cidr = EXTERNAL_SUBNETS[index]
        prefix = cidr.rsplit(".", 1)[0]
        conn.network.create_subnet(name=f"{name}-subnet", network_id=network.id, ip_version=4, cidr=cidr,
                                   gateway_ip=f"{prefix}.1", is_dhcp_enabled=False,
                                   allocation_pools=[{"start": f"{prefix}.100", "end": f"{prefix}.200"}])


def golden_or_fallback_image(lab_root_disk: Path | None) -> Callable[[Path], str]:
    """A maker of the qcow2 to upload: the lab's golden root disk when cached, else a blank qcow2."""
    def make(target: Path) -> str:
        if lab_root_disk is not None and lab_root_disk.is_file():
            _qemu_img(["convert", "-O", "qcow2", str(lab_root_disk), str(target)])
            return f"lab golden image root disk ({lab_root_disk})"
        _qemu_img(["create", "-q", "-f", "qcow2", str(target), FALLBACK_IMAGE_SIZE])
        return f"blank {FALLBACK_IMAGE_SIZE} qcow2 made with qemu-img (no lab golden image in the cache)"
    return make


def _qemu_img(args: list[str]) -> None:
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SocleError(f"qemu-img {args[0]} failed: {result.stderr.strip()}")
