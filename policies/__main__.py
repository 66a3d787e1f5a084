"""Entry point of the CrossGuard pack: ``pulumi preview --policy-pack policies``.

Constructing ``PolicyPack`` starts the analyzer's gRPC server and never returns, so it happens only
when the CLI runs this file as ``__main__`` (``python -m pulumi.policy`` runs it with that name).
Importing this module, as the tests do, only builds the policy list.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyPack

from ght_socle.policy.pack import PACK_NAME, build_policies

POLICIES = build_policies()

if __name__ == "__main__":
    # Each policy carries its own level (catalog + GHT settings); the pack default only covers none.
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
