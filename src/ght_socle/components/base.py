"""What every GHT component shares: child options and resource-name helpers."""

from __future__ import annotations

import re
from typing import Any

import pulumi


def slug(text: str) -> str:
    """A resource-name-safe form of ``text``: ``10.40.2.0/24`` -> ``10-40-2-0-24``, ``dpi_app`` -> ``dpi-app``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class GhtComponent(pulumi.ComponentResource):
    """A component whose children are parented to it (so the plan shows a tree)."""

    def __init__(self, type_token: str, name: str, props: dict[str, Any] | None,
                 opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_token, name, props, opts)

    def child(self, parent: pulumi.Resource | None = None, **options: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent or self, **options)
