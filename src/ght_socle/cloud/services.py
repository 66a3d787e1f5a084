"""What runs in the local cloud: one entry per OpenStack API service, from Debian 12's packages.

Each service is described once (its packages, port, databases, configuration templates, how its
schema is synced, how it is started and where Keystone's catalog points to it); the manager only
walks this table. The next layer (compute, network agents, block storage, object store) adds its
own entries and a plane of its own, without touching the control plane's.

Clients reach every API over HTTPS on 127.0.0.1, on the port OpenStack documents for it: a TLS
front (HAProxy, as production OpenStack deployments put in front of their APIs) terminates TLS there
and forwards to the service itself, which listens in plain HTTP on a loopback port of its own
(``backend_port``, the public port + 10000) with one worker. Only the front and the health checks use
the backend ports; the catalog, the services' token validation and every client use HTTPS.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ght_socle.cloud.layout import Layout
from ght_socle.errors import SocleError

# The region every stack config names (openstack:region); endpoints are registered in each region seen.
DEFAULT_REGION = "eu-fr-1"
# Nothing in the control plane talks to another service over RPC (no agent, no conductor, no
# scheduler yet), so oslo.messaging gets the in-process transport instead of a broker.
CONTROL_PLANE_TRANSPORT = "fake://"

UWSGI = "/usr/bin/uwsgi-core"
# The API itself listens this far above the port its clients use (the TLS front's).
BACKEND_PORT_OFFSET = 10000
UWSGI_PLUGINS = "/usr/lib/uwsgi/plugins"


@dataclass(frozen=True)
class CatalogEntry:
    """A service in Keystone's catalog: name, type and the URL path after host:port."""

    name: str
    type: str
    path: str = ""


@dataclass(frozen=True)
class ApiService:
    """One OpenStack API process of the local cloud."""

    name: str
    packages: tuple[str, ...]
    port: int
    databases: tuple[str, ...]
    # Template file (under templates/cloud) -> file name written into etc/<name>/.
    configs: tuple[str, ...]
    catalog: tuple[CatalogEntry, ...]
    # The schema sync commands, run once per package version (argv builders).
    sync: Callable[[ApiService, Layout], list[list[str]]]
    command: Callable[[ApiService, Layout], list[str]]
    environment: Callable[[Layout], dict[str, str]] = field(default=lambda layout: {})
    # Path probed for health: any HTTP answer below 500 means the API serves.
    health_path: str = "/"

    def config_file(self, layout: Layout, template: str) -> Path:
        return layout.etc / self.name / template.removesuffix(".j2")

    def config_args(self, layout: Layout) -> list[str]:
        args: list[str] = []
        for template in self.configs:
            args += ["--config-file", str(self.config_file(layout, template))]
        return args

    def sync_commands(self, layout: Layout) -> list[list[str]]:
        return self.sync(self, layout)

    def start_command(self, layout: Layout) -> list[str]:
        return self.command(self, layout)

    @property
    def backend_port(self) -> int:
        return self.port + BACKEND_PORT_OFFSET

    def url(self, path: str = "") -> str:
        """The URL clients use: HTTPS through the TLS front."""
        return f"https://127.0.0.1:{self.port}{path}"

    def backend_url(self, path: str = "") -> str:
        """The service's own plain-HTTP listener on loopback (the front's backend, health checks)."""
        return f"http://127.0.0.1:{self.backend_port}{path}"


def uwsgi_python_plugin() -> str:
    """The name of the python3 plugin Debian's uwsgi-plugin-python3 ships (python311 on bookworm)."""
    found = sorted(glob.glob(f"{UWSGI_PLUGINS}/python3*_plugin.so"))
    if not found:
        raise SocleError(f"no python3 plugin in {UWSGI_PLUGINS}: install the Debian package uwsgi-plugin-python3")
    return Path(found[-1]).name.removesuffix("_plugin.so")


def uwsgi_command(port: int, wsgi_file: str) -> list[str]:
    """One uwsgi master and one single-threaded worker serving ``wsgi_file`` on 127.0.0.1:``port``.

    One thread: the OpenStack libraries load eventlet, whose greenlets cannot switch between uwsgi
    threads (a keystone worker with two threads hung on "cannot switch to a different thread").
    """
    return [UWSGI, "--plugin", uwsgi_python_plugin(), "--http-socket", f"127.0.0.1:{port}",
            "--wsgi-file", wsgi_file, "--master", "--processes", "1", "--threads", "1",
            "--die-on-term", "--need-app", "--buffer-size", "65535", "--disable-logging",
            # uwsgi's plain http-socket does not keep connections alive: tell clients not to reuse them.
            "--add-header", "Connection: close"]


def _keystone(service: ApiService, layout: Layout) -> list[list[str]]:
    conf = service.config_args(layout)
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    return [["keystone-manage", *conf, "db_sync"],
            ["keystone-manage", *conf, "fernet_setup", *owner],
            ["keystone-manage", *conf, "credential_setup", *owner]]


KEYSTONE = ApiService(
    name="keystone", packages=("keystone",), port=5000, databases=("keystone",),
    configs=("keystone.conf.j2",), catalog=(),  # keystone-manage bootstrap registers identity itself
    sync=_keystone,
    command=lambda service, layout: uwsgi_command(service.backend_port, "/usr/bin/keystone-wsgi-public"),
    environment=lambda layout: {"OS_KEYSTONE_CONFIG_DIR": str(layout.etc / "keystone")},
    health_path="/v3",
)

GLANCE = ApiService(
    name="glance", packages=("glance-api",), port=9292, databases=("glance",),
    configs=("glance-api.conf.j2",), catalog=(CatalogEntry("glance", "image"),),
    sync=lambda service, layout: [["glance-manage", *service.config_args(layout), "db_sync"]],
    command=lambda service, layout: ["/usr/bin/glance-api", *service.config_args(layout)],
)

PLACEMENT = ApiService(
    name="placement", packages=("placement-api",), port=8778, databases=("placement",),
    configs=("placement.conf.j2",), catalog=(CatalogEntry("placement", "placement"),),
    sync=lambda service, layout: [["placement-manage", *service.config_args(layout), "db", "sync"]],
    command=lambda service, layout: uwsgi_command(service.backend_port, "/usr/bin/placement-api"),
    environment=lambda layout: {"OS_PLACEMENT_CONFIG_DIR": str(layout.etc / "placement")},
)


def _nova(service: ApiService, layout: Layout) -> list[list[str]]:
    manage = ["nova-manage", *service.config_args(layout)]
    # Flavors live in the API database; nova-api also records itself as a service in a cell
    # database, hence cell0, whose URL nova-manage derives from [database] (the "nova" database and
    # user, name suffixed with _cell0). The next layer adds cell1 with its message queue.
    return [[*manage, "api_db", "sync"],
            [*manage, "cell_v2", "map_cell0"],
            [*manage, "db", "sync"]]


NOVA = ApiService(
    name="nova", packages=("nova-api",), port=8774, databases=("nova_api", "nova"),
    configs=("nova.conf.j2",), catalog=(CatalogEntry("nova", "compute", "/v2.1"),),
    sync=_nova,
    command=lambda service, layout: ["/usr/bin/nova-api", *service.config_args(layout)],
)

NEUTRON = ApiService(
    name="neutron", packages=("neutron-server",), port=9696, databases=("neutron",),
    configs=("neutron.conf.j2", "ml2_conf.ini.j2"), catalog=(CatalogEntry("neutron", "network"),),
    sync=lambda service, layout: [["neutron-db-manage", *service.config_args(layout), "upgrade", "heads"]],
    command=lambda service, layout: ["/usr/bin/neutron-server", *service.config_args(layout)],
)

CINDER = ApiService(
    name="cinder", packages=("cinder-api",), port=8776, databases=("cinder",),
    configs=("cinder.conf.j2",), catalog=(CatalogEntry("cinderv3", "volumev3", "/v3/%(project_id)s"),),
    sync=lambda service, layout: [["cinder-manage", *service.config_args(layout), "db", "sync"]],
    command=lambda service, layout: ["/usr/bin/cinder-api", *service.config_args(layout)],
)

# Databases a service's user reaches besides its own: nova-manage names cell0 after the main database.
EXTRA_GRANTS: dict[str, tuple[str, ...]] = {"nova": ("nova_cell0",)}

# Keystone first: every other service validates tokens against it and is registered through it.
CONTROL_PLANE: tuple[ApiService, ...] = (KEYSTONE, GLANCE, PLACEMENT, NOVA, NEUTRON, CINDER)

# Packages of the control plane besides the services': the database, the WSGI server, the TLS front,
# qemu-img (the fallback image), and the OpenStack client for people (the project uses openstacksdk).
SUPPORT_PACKAGES = ("mariadb-server", "uwsgi-core", "uwsgi-plugin-python3", "haproxy", "qemu-utils",
                    "python3-openstackclient")


def control_plane_packages() -> list[str]:
    packages = list(SUPPORT_PACKAGES)
    for service in CONTROL_PLANE:
        packages += service.packages
    return packages


def service_named(name: str) -> ApiService:
    for service in CONTROL_PLANE:
        if service.name == name:
            return service
    raise KeyError(name)
