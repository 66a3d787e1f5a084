"""Cloud-init user-data rendered from the package's jinja2 templates (no secret ever goes in)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import jinja2

from ght_socle import paths

TEMPLATE = "cloud-init/user-data.yaml.j2"


@dataclass(frozen=True)
class UserDataArgs:
    hostname: str
    dns_domain: str
    admin_user: str
    admin_groups: Sequence[str]
    automation_group: str
    admin_keys: Sequence[str]
    apt_proxy: str = ""
    apt_mirror: str = ""
    ntp_servers: Sequence[str] = field(default_factory=list)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.PACKAGE_DIR / "templates")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML
    )


def render_user_data(args: UserDataArgs) -> str:
    return _environment().get_template(TEMPLATE).render(
        hostname=args.hostname, dns_domain=args.dns_domain, admin_user=args.admin_user,
        admin_groups=list(args.admin_groups), automation_group=args.automation_group,
        admin_keys=list(args.admin_keys), apt_proxy=args.apt_proxy, apt_mirror=args.apt_mirror,
        ntp_servers=list(args.ntp_servers),
    )
