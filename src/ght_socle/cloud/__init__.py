"""The local OpenStack cloud: Debian 12's OpenStack packages run as plain processes on loopback.

``socle cloud up --control-plane`` gives the stacks real APIs to query (Keystone, Glance,
Placement, Nova API, Neutron server, Cinder API, on MariaDB), seeded with what the stack configs
name, behind a TLS front. Clients get its credentials from :func:`client_env` (OS_* variables, its
certificate authority in OS_CACERT), from the ``clouds.yaml`` at :func:`clouds_yaml` (cloud
:data:`CLOUD_NAME`), or a connection from :func:`connect_as_stacks_user`.
"""

from __future__ import annotations

from pathlib import Path

from ght_socle.cloud.access import client_env, connect_as_stacks_user
from ght_socle.cloud.layout import CLOUD_NAME, Layout


def clouds_yaml(layout: Layout | None = None) -> Path:
    """Path of the clouds.yaml ``up`` writes (use with ``OS_CLIENT_CONFIG_FILE`` and ``OS_CLOUD``)."""
    return (layout or Layout.default()).clouds_yaml


__all__ = ["CLOUD_NAME", "Layout", "client_env", "clouds_yaml", "connect_as_stacks_user"]
