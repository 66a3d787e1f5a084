"""Benchmark of the offline plan on a large synthetic GHT: 30 hospital sites, 500 virtual machines.

Generates a stack configuration of that size (same zones, roles and flow-matrix shape as prod),
plans it with the project's stack program under the mock engine, and prints wall time, peak
memory (ru_maxrss) and resource count. Targets on a 2-core machine: under 30 s, under 1.5 GB.

    .venv/bin/python bench/plan.py [--sites 30] [--vms 500] [--keep FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ght_socle.plan import run_plan

TARGET_SECONDS = 30.0
TARGET_MB = 1536.0

# Zones of the synthetic GHT: /22 where the servers are many.
ZONES = {
    "admin": "10.40.0.0/22", "identity": "10.40.4.0/22", "hds-app": "10.40.8.0/21", "hds-data": "10.40.16.0/21",
    "interop": "10.40.24.0/22", "nonhds": "10.40.28.0/22", "backup": "10.40.32.0/22", "log": "10.40.36.0/22",
    "dmz-in": "10.40.40.0/22", "dmz-out": "10.40.44.0/22", "transit": "10.40.48.0/22",
}
# role -> (zone, groups, share of the fleet, data class, tier, data volume GB)
ROLES: dict[str, tuple[str, list[str], float, str, str, int]] = {
    "dpi_app": ("hds-app", ["dpi_app"], 0.20, "hds", "t1", 0),
    "dpi_db": ("hds-data", ["dpi_db"], 0.08, "hds", "t1", 2000),
    "pacs": ("hds-app", ["pacs"], 0.08, "hds", "t1", 0),
    "pacs_store": ("hds-data", ["pacs"], 0.08, "hds", "t1", 8000),
    "business_apps": ("hds-app", [], 0.20, "hds", "t1", 200),
    "interop": ("interop", ["interop"], 0.05, "hds", "t1", 200),
    "identity": ("identity", ["identity"], 0.03, "nonhds", "t0", 0),
    "nonhds_apps": ("nonhds", [], 0.12, "nonhds", "t1", 100),
    "rproxy_ext": ("dmz-in", ["reverse_proxy"], 0.02, "nonhds", "t1", 0),
    "rproxy_int": ("transit", ["reverse_proxy"], 0.03, "nonhds", "t1", 0),
    "egress_proxy": ("dmz-out", ["egress_proxy"], 0.01, "nonhds", "t1", 0),
    "log_collector": ("log", ["log_collector"], 0.02, "hds", "t0", 1000),
    "backup_server": ("backup", ["backup_server"], 0.02, "hds", "t0", 0),
    "monitoring": ("admin", [], 0.02, "nonhds", "t0", 200),
}
SERVER_ZONES = ["admin", "identity", "hds-app", "hds-data", "interop", "nonhds", "backup", "log", "dmz-in",
                "dmz-out", "transit"]


def role_counts(vms: int) -> dict[str, int]:
    """Hosts per role (2 bastions on top), adding up to exactly ``vms``."""
    counts = {name: max(2, round(spec[2] * (vms - 2))) for name, spec in ROLES.items()}
    counts["dpi_app"] += vms - 2 - sum(counts.values())
    return counts


def synthetic_config(sites: int, vms: int) -> dict[str, Any]:
    common = {"flavor": "b3-16", "image": "debian-12-ght-golden", "volume_size": 40, "volume_type": "encrypted-luks",
              "owner": "dsi-ght", "backup_policy": "daily-35d"}
    roles: dict[str, Any] = {"bastion": {
        **common, "zone": "admin", "extra_zones": ["transit"], "groups": ["bastion"], "count": 2, "ha": True,
        "data_class": "nonhds", "tier": "t0", "criticality": "important"}}
    for name, count in role_counts(vms).items():
        zone, groups, _share, data_class, tier, data_volume = ROLES[name]
        roles[name] = {**common, "zone": zone, "groups": groups, "count": count, "ha": True,
                       "data_class": data_class, "tier": tier, "criticality": "critical",
                       "data_volume_size": data_volume, "floating_ip": name == "rproxy_ext",
                       "hostname_prefix": name.replace("_", "-")}
    roles["interop"]["extra_zones"] = ["transit"]
    flows = {
        "FLOW-001": {"source": "@admin-networks", "destination": "role:bastion", "protocol": "tcp", "ports": [22],
                     "description": "SSH to the bastions"},
        "FLOW-002": {"source": "role:bastion", "destination": SERVER_ZONES, "protocol": "tcp", "ports": [22],
                     "description": "Administration from the bastions"},
        "FLOW-003": {"source": SERVER_ZONES, "destination": "role:log_collector", "protocol": "tcp", "ports": [6514],
                     "description": "Logs over syslog/TLS"},
        "FLOW-004": {"source": SERVER_ZONES, "destination": "role:log_collector", "protocol": "udp", "ports": [123],
                     "description": "Time"},
        "FLOW-005": {"source": SERVER_ZONES, "destination": "role:backup_server", "protocol": "tcp", "ports": [8000],
                     "description": "Backups"},
        "FLOW-006": {"source": SERVER_ZONES, "destination": "role:egress_proxy", "protocol": "tcp", "ports": [3142],
                     "description": "Updates through the proxy"},
        "FLOW-007": {"source": "@sites", "destination": ["role:rproxy_int", "role:interop"], "protocol": "tcp",
                     "ports": [443, 2575], "description": "Sites to the applications and the EAI"},
        "FLOW-008": {"source": ["role:rproxy_int", "role:rproxy_ext", "role:interop"],
                     "destination": ["role:dpi_app", "role:pacs", "role:business_apps", "role:nonhds_apps"],
                     "protocol": "tcp", "ports": [8443], "description": "Proxies and EAI to the applications"},
        "FLOW-009": {"source": ["role:dpi_app", "role:business_apps"], "destination": "role:dpi_db", "protocol": "tcp",
                     "ports": [5432], "description": "Applications to the databases"},
        "FLOW-010": {"source": SERVER_ZONES, "destination": "role:identity", "protocol": "tcp", "ports": [636, 88],
                     "description": "Directory and Kerberos"},
        "FLOW-011": {"source": "@internet", "destination": "role:rproxy_ext", "protocol": "tcp", "ports": [443],
                     "description": "Published portals"},
    }
    site_config = {f"site-{i:02d}": {"cidr": f"10.{100 + i}.0.0/16", "peer_address": f"198.51.100.{10 + i}",
                                      "psk": {"secure": f"v1:bench:{i}"}} for i in range(sites)}
    return {"config": {
        "openstack:region": "eu-fr-1",
        "openstack:authUrl": "https://identity.eu-fr-1.cloud.example.eu:5000/v3",
        "ght-socle:ght_name": "ght-bench",
        "ght-socle:environment": "test",
        "ght-socle:external_network": "Ext-Net",
        "ght-socle:availability_zones": ["eu-fr-1a", "eu-fr-1b", "eu-fr-1c"],
        "ght-socle:zones": ZONES,
        "ght-socle:sites": site_config,
        "ght-socle:admin_ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNobWFyay1rZXk ghtadmin@bench"],
        "ght-socle:roles": roles,
        "ght-socle:flows": flows,
        "ght-socle:backup_policies": {"daily-35d": {"keep_daily": 35, "keep_weekly": 8, "keep_monthly": 12}},
        "ght-socle:backup": {
            "repository": {"volume_size": 20000, "volume_type": "encrypted-luks"},
            "object_storage": {"region": "eu-fr-1", "offsite_region": "eu-fr-2"},
            "offline": {"mode": "immutable", "min_days": 35, "rotation": "weekly",
                        "operator_provides": "object-lock bucket outside the production accounts"},
        },
    }}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=30)
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="also write the generated stack configuration there")
    args = parser.parse_args(argv)

    config = synthetic_config(args.sites, args.vms)
    with tempfile.TemporaryDirectory() as scratch:
        config_file = args.keep or Path(scratch) / "Pulumi.bench.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"planning a synthetic GHT: {args.sites} sites, {args.vms} VMs ...", file=sys.stderr, flush=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = run_plan(stack="bench", config_file=config_file)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    hosts = len(plan.outputs["hosts"])
    instances = len(plan.of_type("openstack:compute/instance:Instance"))
    print(f"hosts: {hosts}  instances: {instances}  resources: {len(plan.resources)}")
    print(f"wall time: {seconds:.1f} s (target < {TARGET_SECONDS:.0f} s); CPU time {cpu_seconds:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine stretches the wall time)")
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB (target < {TARGET_MB:.0f} MB)")
    ok = seconds < TARGET_SECONDS and peak_mb < TARGET_MB
    print("within targets" if ok else "OUTSIDE TARGETS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
