"""A Keystone user with MFA but a literal password (IAM-007)."""
import pulumi_openstack as openstack

openstack.identity.User(
    "svc-interop", name="svc-interop", password="Interop#2024", multi_factor_auth_enabled=True,
    multi_factor_auth_rules=[openstack.identity.UserMultiFactorAuthRuleArgs(rules=["password", "totp"])])
