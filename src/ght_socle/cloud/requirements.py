"""What the stacks expect to find in the cloud, read from their configs (stacks/config/Pulumi.<env>.yaml).

The stack program looks up its images and external network by name during a preview and names
flavors and volume types in the resources it declares: the local cloud must hold every one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.errors import ConfigError
from ght_socle.trust.yamlio import load_yaml

# OVHcloud-style general purpose flavors (b3-8, b3-16, ...): the number is the RAM in GiB, and
# there is one vCPU per 4 GiB of RAM (b3-8: 2 vCPU, 8 GiB).
FLAVOR_NAME = re.compile(r"^[a-z][a-z0-9]*-(?P<ram_gib>[0-9]+)$")
GIB_PER_VCPU = 4
FLAVOR_DISK_GB = 20


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram_mib: int
    disk_gb: int


@dataclass
class StackNeeds:
    """The names the stack configs use, and the file that first named each (for error messages)."""

    regions: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    external_networks: set[str] = field(default_factory=set)
    flavors: dict[str, Flavor] = field(default_factory=dict)
    volume_types: set[str] = field(default_factory=set)
    sources: list[Path] = field(default_factory=list)


def flavor_from_name(name: str, source: Path, where: str) -> Flavor:
    match = FLAVOR_NAME.match(name)
    if match is None or int(match["ram_gib"]) < 1:
        raise ConfigError(f"flavor {name!r} does not follow <family>-<RAM GiB> (e.g. b3-8): the local cloud "
                          "cannot size it", file=source, where=where)
    ram_gib = int(match["ram_gib"])
    return Flavor(name=name, vcpus=max(1, ram_gib // GIB_PER_VCPU), ram_mib=ram_gib * 1024, disk_gb=FLAVOR_DISK_GB)


def stack_config_files(config_dir: Path | None = None) -> list[Path]:
    directory = config_dir or paths.stacks_dir() / "config"
    files = sorted(directory.glob("Pulumi.*.yaml"))
    if not files:
        raise ConfigError("no stack config (Pulumi.<env>.yaml) found", file=directory)
    return files


def read_needs(files: list[Path], project: str = "ght-socle") -> StackNeeds:
    needs = StackNeeds()
    for source in files:
        _add_file(needs, source, project)
    if not needs.regions:
        raise ConfigError("no stack config names openstack:region", file=files[0].parent)
    return needs


def _require(mapping: dict[str, Any], key: str, source: Path, where: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"missing key {key}", file=source, where=where)
    return mapping[key]


def _add_file(needs: StackNeeds, source: Path, project: str) -> None:
    raw = load_yaml(source, what="stack configuration") or {}
    config = raw.get("config") if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise ConfigError("expected a mapping", file=source, where="key config")
    needs.sources.append(source)
    needs.regions.add(str(_require(config, "openstack:region", source, "key config")))
    needs.external_networks.add(str(_require(config, f"{project}:external_network", source, "key config")))
    roles = _require(config, f"{project}:roles", source, "key config")
    if not isinstance(roles, dict):
        raise ConfigError("expected a mapping of roles", file=source, where=f"key {project}:roles")
    for role_name, role in roles.items():
        where = f"key {project}:roles.{role_name}"
        if not isinstance(role, dict):
            raise ConfigError("expected a mapping", file=source, where=where)
        flavor = str(_require(role, "flavor", source, where))
        needs.flavors.setdefault(flavor, flavor_from_name(flavor, source, f"{where}.flavor"))
        needs.images.add(str(_require(role, "image", source, where)))
        needs.volume_types.add(str(_require(role, "volume_type", source, where)))
    backup = config.get(f"{project}:backup")
    repository = backup.get("repository") if isinstance(backup, dict) else None
    if isinstance(repository, dict) and "volume_type" in repository:
        needs.volume_types.add(str(repository["volume_type"]))
