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

VERSION_SYMBOL = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
# Release flags of Pulumi's own builds: static, no cgo, no gRPC tracing.
BUILD_TAGS = "osusergo,grpcnotrace"


@dataclass(frozen=True)
class ModuleFile:
    """A file shipped inside a Go module (in the module cache once the module is downloaded)."""

    module: str
    path: str  # inside the module


@dataclass(frozen=True)
class EnginePart:
    """One binary of the engine, built from a Go wrapper module of the project (``engine/<module_dir>``)."""

    binary: str  # file name of the built binary
    module_dir: str
    package: str  # Go package to build, from the wrapper module
    version: str  # what the binary reports, injected with -ldflags -X <version_symbol>
    version_args: tuple[str, ...]  # how the binary is asked its version
    extra_files: tuple[ModuleFile, ...] = ()  # placed beside the binary
    version_symbol: str = VERSION_SYMBOL  # a provider plugin has its own
    # Pulumi looks for its language hosts beside its own binary first: such a part is linked there.
    beside_cli: bool = False


CLI = EnginePart(binary="pulumi", module_dir="cli", package="github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
                 version=f"v{PULUMI_VERSION}", version_args=("version",))
# The project's own Python language host (Pulumi's is in a module the proxy does not serve): it speaks
# the CLI's protocol version, the "+ght-socle" build metadata says whose it is.
LANGUAGE_PYTHON = EnginePart(
    binary="pulumi-language-python", module_dir="language-python", package=".",
    version=f"v{PULUMI_VERSION}+ght-socle", version_args=("-version",),
    extra_files=(ModuleFile("github.com/pulumi/pulumi/sdk/v3", "python/cmd/pulumi-language-python-exec"),),
    beside_cli=True)
# Built in this order; the CLI comes first.
ENGINE_PARTS = (CLI, LANGUAGE_PYTHON)
CLI_PACKAGE = CLI.package


@dataclass(frozen=True)
class Unbuildable:
    """A part of the engine that cannot be built from what the module proxy serves."""

    name: str
    module: str
    reason: str
    consequence: str


# Both Pulumi modules the engine would take its Python host and OpenStack plugin from answer 403 on
# every release pseudo-version; the project builds its own from what the proxy serves
# (engine/language-python, engine/provider-openstack). Nothing is left unbuildable.
UNBUILDABLE: tuple[Unbuildable, ...] = ()
