"""What every GHT component shares: child options and resource-name helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import pulumi

Found = TypeVar("Found")


def look_up(what: str, name: str, config_key: str, invoke: Callable[[], Found]) -> Found:
    """Run a lookup of the cloud (image, flavor, network named in the stack config) now.

    A name the cloud does not know stops the program with one line naming the config key and the
    provider's reason (a ``pulumi.RunError``: no stack trace), before anything is declared from it.
    """
    try:
        return invoke()
    except Exception as exc:  # the SDK raises a bare Exception carrying the provider's message
        reason = " ".join(str(exc).replace("*", " ").split())
        reason = reason.rsplit("error occurred:", 1)[-1].strip() or reason
        raise pulumi.RunError(f"{config_key}: {what} {name!r}: {reason}") from None


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

    def named(self, key: str, parent: pulumi.Resource | None = None, **options: Any) -> dict[str, Any]:
        """``resource_name`` and ``opts`` of the child ``key``, to pass as ``**self.named(key)``.

        A child's name starts with its component's name: a URN is type chain plus name, so two
        components of one kind in a stack would otherwise give their children the same URN (the
        engine refuses the program). Children were once named by ``key`` alone; the alias keeps a
        stack created then from replacing them.
        """
        return {"resource_name": f"{self._name}-{key}",
                "opts": self.child(parent, aliases=[pulumi.Alias(name=key)], **options)}
