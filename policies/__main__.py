"""Entry point of the CrossGuard pack: ``pulumi preview --policy-pack policies``.

Constructing ``PolicyPack`` starts the analyzer's gRPC server and never returns, so it happens only
when the CLI runs this file as ``__main__`` (``python -m pulumi.policy`` runs it with that name).
Importing this module, as the tests do, only builds the policy list.
"""

from __future__ import annotations

from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

from ght_socle.catalog import default_catalog
from ght_socle.policy.pack import PACK_NAME, build_policies
from ght_socle.policy.registry import all_policies
from ght_socle.policy.waivers import load_waivers

CATALOG = default_catalog()
# The same waivers as `socle check`, validated the same way (an expired one stops the pack).
WAIVERS_FILE = Path(__file__).with_name("waivers.yaml")
WAIVERS = (load_waivers(WAIVERS_FILE, CATALOG, policy_names=[p.name for p in all_policies()])
           if WAIVERS_FILE.exists() else [])
POLICIES = build_policies(CATALOG, WAIVERS)

if __name__ == "__main__":
    # Each policy carries its own level (catalog + GHT settings); the pack default only covers none.
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
