"""IAM: cloud identities — MFA, application credentials, plaintext passwords."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from ght_socle.policy.helpers import APPLICATION_CREDENTIAL, EC2_CREDENTIAL, USER, is_truthy
from ght_socle.policy.model import PolicyContext, Resource, Violation
from ght_socle.policy.registry import resource_policy

OVER_PRIVILEGED_ROLES = ("admin",)  # Keystone's cloud-wide administrator role


@resource_policy("iam-user-mfa-enabled", "IAM-005", "Every enabled cloud user has multi-factor authentication",
                 [USER], fix="Set multi_factor: true for the user (or federate it through the MFA identity provider).")
def iam_user_mfa_enabled(user: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if user.get("enabled") is False:
        return
    if not is_truthy(user.get("multiFactorAuthEnabled", False)):
        yield Violation("multiFactorAuthEnabled is not true")
    elif not user.get("multiFactorAuthRules"):
        yield Violation("multi-factor authentication is enabled without rules (no second factor is required)")


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@resource_policy("iam-app-credential-expiry", "IAM-006", "Application credentials expire within the maximum lifetime",
                 [APPLICATION_CREDENTIAL], fix="Set expires_in_days <= max_credential_days on the credential.")
def iam_app_credential_expiry(credential: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    days = int(ctx.param("max_credential_days"))
    expires = credential.get("expiresAt")
    if not expires:
        yield Violation("never expires (no expiresAt)")
        return
    when = _parse_time(str(expires))
    if when is None:
        yield Violation(f"expiresAt {expires!r} is not an ISO 8601 date")
    elif when > ctx.now + timedelta(days=days):
        yield Violation(f"expires {when.date()}, more than {days} days from now")


@resource_policy("iam-app-credential-restricted", "IAM-006",
                 "Application credentials cannot create credentials and carry no administrator role",
                 [APPLICATION_CREDENTIAL], fix="Set unrestricted: false and give only the roles needed.")
def iam_app_credential_restricted(credential: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if is_truthy(credential.get("unrestricted", False)):
        yield Violation("is unrestricted: it can create other credentials")
    roles = [str(r) for r in credential.get("roles", []) or []]
    broad = [r for r in roles if r.lower() in OVER_PRIVILEGED_ROLES]
    if broad:
        yield Violation(f"carries the {', '.join(broad)} role")


@resource_policy("iam-no-plaintext-password", "IAM-007", "Cloud identities get passwords only from stack secrets",
                 [USER, APPLICATION_CREDENTIAL, EC2_CREDENTIAL],
                 fix="Set the password with `pulumi config set --secret` and read it with require_secret.")
def iam_no_plaintext_password(identity: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    # The provider SDK marks these inputs secret itself, so the question is where the value comes
    # from: a literal or plain config value sits readable in the repository.
    for key in ("password", "secret"):
        value = identity.get(key)
        if isinstance(value, str) and value and not ctx.is_secret_config_value(value):
            yield Violation(f"{key} is a plaintext value written in the program or a plain config key")
