"""The local cloud's TLS front: one HAProxy process terminating HTTPS for every API.

Production OpenStack clouds put a load balancer that terminates TLS in front of their APIs
(kolla-ansible and OpenStack-Ansible deploy HAProxy for it); the local cloud does the same, with the
certificate of its own authority (``tls.py``). HAProxy runs in the foreground as one tracked process
(``-db``: no daemon mode, no fork), its configuration rendered into the state directory.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from ght_socle.cloud.layout import Layout
from ght_socle.cloud.render import template_environment, write_private
from ght_socle.cloud.services import ApiService
from ght_socle.cloud.tls import TlsFiles

NAME = "tls-front"
HAPROXY = "/usr/sbin/haproxy"


def config_file(layout: Layout) -> Path:
    return layout.etc / NAME / "haproxy.cfg"


def write_config(layout: Layout, apis: tuple[ApiService, ...], tls: TlsFiles) -> str:
    """Render HAProxy's configuration (and check it with ``haproxy -c`` at start); return its digest.

    The digest covers the certificate too: a renewed certificate restarts the front.
    """
    text = template_environment().get_template("cloud/haproxy.cfg.j2").render(
        apis=apis, certificate=str(tls.server_bundle))
    target = config_file(layout)
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_private(layout, target, text)
    return hashlib.sha256(text.encode() + tls.server_bundle.read_bytes()).hexdigest()


def command(layout: Layout) -> list[str]:
    return [HAPROXY, "-db", "-f", str(config_file(layout))]


def check_command(layout: Layout) -> list[str]:
    return [HAPROXY, "-c", "-f", str(config_file(layout))]


def client_context(tls: TlsFiles) -> ssl.SSLContext:
    """What a client of the local cloud trusts: its authority only, hostnames checked."""
    return ssl.create_default_context(cafile=str(tls.authority))

