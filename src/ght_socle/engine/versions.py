"""The engine's versions, pinned together (docs/engine.md says why these).

The Pulumi CLI is built from Go modules at the same version as the ``pulumi`` Python SDK that
pyproject.toml pins; the OpenStack provider plugin must equal the ``pulumi-openstack`` SDK's
version exactly, or the engine looks for another plugin. A test compares these with the
installed SDKs, so the pins cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# Newest release both the Go module proxy (github.com/pulumi/pulumi/pkg/v3) and PyPI (pulumi) carry.
PULUMI_VERSION = "3.260.0"
# Newest pulumi-openstack whose provider dependencies the proxy serves (bridge v3.120.0).
OPENSTACK_VERSION = "5.4.1"
POLICY_SDK_VERSION = "1.21.0"

CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
# Release flags of Pulumi's own builds: static, no cgo, no gRPC tracing.
BUILD_TAGS = "osusergo,grpcnotrace"


@dataclass(frozen=True)
class Unbuildable:
    """A part of the engine that cannot be built from what the module proxy serves."""

    name: str
    module: str
    reason: str
    consequence: str


# The module answers 403 on every release pseudo-version (see docs/engine.md "What is missing").
# The OpenStack provider's module is refused too, but the project builds its own plugin from the
# parts the proxy serves (engine/provider-openstack, ght_socle.engine.provider).
UNBUILDABLE = (
    Unbuildable(
        name="pulumi-language-python",
        module="github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3",
        reason="the Go module proxy serves no version of the Python language host module",
        consequence="the CLI cannot run a Python program (pulumi preview/up of the stacks, policy packs)"),
)
