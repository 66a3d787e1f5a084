"""Configuration files of the local cloud, rendered from the project's templates (templates/cloud).

The packages' own files in /etc are never read (every daemon gets ``--config-file`` or its
``OS_*_CONFIG_DIR``) nor changed. Rendered files hold passwords: they are written 0600.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ght_socle import paths
from ght_socle.cloud import database
from ght_socle.cloud.layout import Layout
from ght_socle.cloud.services import CONTROL_PLANE, CONTROL_PLANE_TRANSPORT, ApiService
from ght_socle.cloud.tls import TlsFiles
from ght_socle.errors import SocleError
from ght_socle.trust import files

# The physical network name the flat external network is bound to (ml2_type_flat).
EXTERNAL_PHYSNET = "extnet"


@dataclass
class Secrets:
    """Generated passwords of the local cloud (state dir, 0600; never printed, never committed)."""

    admin: str
    stacks: str
    services: dict[str, str] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load_or_create(cls, layout: Layout, services: tuple[ApiService, ...] = CONTROL_PLANE) -> Secrets:


        if layout.secrets_file.exists():
            try:
                raw = json.loads(layout.secrets_file.read_text())
                loaded = cls(admin=raw["admin"], stacks=raw["stacks"], services=dict(raw["services"]),
                             databases=dict(raw["databases"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise SocleError(f"unreadable secrets ({exc}): `socle cloud down --purge` starts afresh",
                                 file=layout.secrets_file) from exc
        else:
            loaded = cls(admin=_password(), stacks=_password())
        changed = not layout.secrets_file.exists()
        for service in services:
            if service.name not in loaded.services:
                loaded.services[service.name] = _password()
                changed = True
            for name in service.databases:
                if name not in loaded.databases:
                    loaded.databases[name] = _password()
                    changed = True
        if changed:
            loaded.save(layout)
        return loaded

    def save(self, layout: Layout) -> None:


        write_private(layout, layout.secrets_file, json.dumps(
            {"admin": self.admin, "stacks": self.stacks, "services": self.services, "databases": self.databases},
            indent=2) + "\n")


def _password() -> str:
    return secrets.token_urlsafe(24)


def write_private(layout: Layout, path: Path, text: str) -> None:
    """Write ``text`` to ``path`` inside the state directory, readable by its owner only."""
    files.write_text(path, text, within=layout.root, mode=0o600)


def template_environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(paths.PACKAGE_DIR / "templates")), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


def context(layout: Layout, passwords: Secrets, region: str,
            services: tuple[ApiService, ...] = CONTROL_PLANE) -> dict[str, Any]:
    keystone = next(service for service in services if service.name == "keystone")
    return {
        "region": region,
        "logs": str(layout.logs),
        "data": str(layout.data),
        "identity_url": keystone.url("/v3"),
        "identity_public": keystone.url(),
        "ca_file": str(TlsFiles.of(layout).authority),
        # What each service's own listener binds: the TLS front owns the public ports.
        "ports": {service.name: service.backend_port for service in services},
        "passwords": passwords.services,
        "databases": {name: database.url(layout, name, password) for name, password in passwords.databases.items()},
        "transport_url": CONTROL_PLANE_TRANSPORT,
        "external_physnet": EXTERNAL_PHYSNET,
    }


def render(service: ApiService, values: dict[str, Any], environment: Environment | None = None) -> dict[str, str]:
    """File name -> text of every configuration file of ``service``."""
    environment = environment or template_environment()
    return {template.removesuffix(".j2"): environment.get_template(f"cloud/{template}").render(**values)
            for template in service.configs}


def write(layout: Layout, service: ApiService, files: dict[str, str]) -> str:
    """Write ``service``'s files; return their digest (a change means the daemon must restart)."""
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        target = layout.etc / service.name / name
        if not target.exists() or target.read_text() != text:
            write_private(layout, target, text)
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()
