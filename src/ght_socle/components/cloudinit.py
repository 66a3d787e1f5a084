"""Cloud-init user-data, built as data and written by a YAML emitter (no secret ever goes in).

The document is assembled as a Python structure from values checked against the project's
grammars (:mod:`ght_socle.trust.grammar`) and serialized with ``yaml.safe_dump``: a value can never
add a key, a list item or a ``runcmd`` to the document, whatever it holds. The sudoers and apt
snippets it carries are built from the same checked names and URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ght_socle.trust.grammar import (
    check_dns_domain,
    check_host_name,
    check_http_url,
    check_ipv4,
    check_ssh_public_key,
    check_user_name,
)

HEADER = """\
#cloud-config
# Rendered by ght_socle.components.cloudinit for {hostname}. Never put a secret here: user-data
# is readable by anyone with read access to the instance (PSSI CMP-002).
"""


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

    def checked(self) -> UserDataArgs:
        """The same arguments, each checked against its grammar (ValueError on the first bad one)."""
        check_host_name(self.hostname)
        check_dns_domain(self.dns_domain)
        for name in (self.admin_user, *self.admin_groups, self.automation_group):
            check_user_name(name)
        for key in self.admin_keys:
            check_ssh_public_key(key)
        check_http_url(self.apt_proxy)
        check_http_url(self.apt_mirror)
        for server in self.ntp_servers:
            check_ipv4(server)
        return self


def user_data_document(args: UserDataArgs) -> dict[str, Any]:
    """The cloud-config document as data."""
    args.checked()
    write_files: list[dict[str, Any]] = [{
        # Documented derogation (PSSI ADM-006): the automation group may use sudo without a password,
        # its members have no password at all and log in with keys through the bastion only.
        "path": f"/etc/sudoers.d/10-{args.automation_group}",
        "owner": "root:root",
        "permissions": "0440",
        "content": f"Defaults use_pty\n%{args.automation_group} ALL=(ALL:ALL) NOPASSWD: ALL\n",
    }]
    if args.apt_proxy:
        write_files.append({
            "path": "/etc/apt/apt.conf.d/01-ght-proxy",
            "owner": "root:root",
            "permissions": "0644",
            "content": f'Acquire::http::Proxy "{args.apt_proxy}";\nAcquire::https::Proxy "{args.apt_proxy}";\n',
        })
    document: dict[str, Any] = {
        "hostname": args.hostname,
        "fqdn": f"{args.hostname}.{args.dns_domain}",
        "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        "ssh_pwauth": False,
        "disable_root": True,
        "groups": list(args.admin_groups),
        "users": [{
            "name": args.admin_user,
            "gecos": "GHT administration (automation and bastion jumps)",
            "shell": "/bin/bash",
            "lock_passwd": True,
            "groups": list(args.admin_groups),
            "ssh_authorized_keys": list(args.admin_keys),
        }],
        "write_files": write_files,
    }
    if args.apt_mirror:
        document["apt"] = {"primary": [{"arches": ["default"], "uri": args.apt_mirror}]}
    if args.ntp_servers:
        document["ntp"] = {"enabled": True, "servers": list(args.ntp_servers)}
    return document


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (file contents) as literal blocks, as a person would write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def render_user_data(args: UserDataArgs) -> str:
    body = yaml.dump(user_data_document(args), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=4096, allow_unicode=False)
    return HEADER.format(hostname=args.hostname) + body
