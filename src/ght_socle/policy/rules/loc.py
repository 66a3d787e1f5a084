"""LOC: data localisation — regions and identity endpoints in the EEA allow-list."""

from __future__ import annotations

from collections.abc import Iterator

from ght_socle.policy.helpers import CONTAINER, OPENSTACK_PROVIDER
from ght_socle.policy.model import PolicyContext, Resource, Stack, Violation
from ght_socle.policy.registry import resource_policy, stack_policy

REGION_CONFIG = "openstack:region"
AUTH_URL_CONFIG = "openstack:authUrl"


@stack_policy("loc-region-allowlist", "LOC-001", "The stack and its resources use allow-listed regions only",
              fix="Set openstack:region (and any resource region) to an allowed region.")
def loc_region_allowlist(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    allowed = [str(r) for r in ctx.param("allowed_regions")]
    region = stack.config.get(REGION_CONFIG)
    providers = stack.of_type(OPENSTACK_PROVIDER)
    if region is None and not providers:
        yield Violation(f"{REGION_CONFIG} is not set: the region would come from the deployer's environment")
    elif region is not None and str(region) not in allowed:
        yield Violation(f"{REGION_CONFIG} {region!r} is not allowed ({', '.join(allowed)})")
    for resource in stack.resources:
        if resource.type == CONTAINER:
            continue  # LOC-002 (loc-container-region-allowlist) speaks for containers
        value = resource.known("region")  # unknown in a preview when the provider fills it in
        if resource.type == OPENSTACK_PROVIDER and value is None and region is None:
            yield Violation("provider without region", resource)
        elif isinstance(value, str) and value and value not in allowed:
            yield Violation(f"region {value!r} is not allowed ({', '.join(allowed)})", resource)


@stack_policy("loc-auth-url-allowlist", "LOC-001", "The identity endpoint is an allow-listed provider endpoint",
              fix="Set openstack:authUrl to the certified provider's endpoint.")
def loc_auth_url_allowlist(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    suffixes = [str(s) for s in ctx.param("allowed_auth_url_suffixes")]
    targets: list[tuple[object, Resource | None]] = []
    if stack.config.get(AUTH_URL_CONFIG) is not None:
        targets.append((stack.config.get(AUTH_URL_CONFIG), None))
    for provider in stack.of_type(OPENSTACK_PROVIDER):
        if provider.get("authUrl") is not None:
            targets.append((provider.get("authUrl"), provider))
    if not targets:
        yield Violation(f"{AUTH_URL_CONFIG} is not set: the endpoint would come from the deployer's environment")
    for url, resource in targets:
        text = str(url).rstrip("/")
        if not text.startswith("https://") or not any(text.endswith(s.rstrip("/")) for s in suffixes):
            yield Violation(f"auth URL {url!r} is not an allowed endpoint (https, ending with "
                            f"{' or '.join(suffixes)})", resource)


@resource_policy("loc-container-region-allowlist", "LOC-002", "Object containers live in an allow-listed region",
                 [CONTAINER], fix="Set the container's region to an allowed region.")
def loc_container_region_allowlist(container: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    allowed = [str(r) for r in ctx.param("allowed_regions", rule="LOC-001")]
    region = container.get("region")
    if region and str(region) not in allowed:
        yield Violation(f"region {region!r} is not allowed ({', '.join(allowed)})")
