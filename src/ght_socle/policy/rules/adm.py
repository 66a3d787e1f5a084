"""ADM: administration goes through the bastion, which lives in the admin zone."""

from __future__ import annotations

from collections.abc import Iterator

from ght_socle.policy.helpers import INSTANCE, tagged
from ght_socle.policy.model import PolicyContext, Stack, Violation
from ght_socle.policy.registry import stack_policy
from ght_socle.policy.rules.cmp import ROLE_KEY, instance_role
from ght_socle.policy.rules.net import ADMIN_ZONE, BASTION_ROLE


@stack_policy("adm-bastion-in-admin-zone", "ADM-001", "The stack's bastion exists and lives in the admin zone",
              [INSTANCE], fix="Declare the bastion role in the admin zone in the stack configuration.")
def adm_bastion_in_admin_zone(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    instances = stack.of_type(INSTANCE)
    bastions = [i for i in instances if instance_role(i) == BASTION_ROLE]
    for bastion in bastions:
        if tagged(bastion, "zone") != ADMIN_ZONE:
            yield Violation(f"bastion in zone {tagged(bastion, 'zone') or 'unknown'}, not {ADMIN_ZONE}", bastion)
    # Only stacks that declare GHT hosts (role metadata) must provide their bastion.
    if not bastions and any(i.metadata.get(ROLE_KEY) for i in instances):
        yield Violation("the stack declares hosts but no bastion: administration has no controlled path")
