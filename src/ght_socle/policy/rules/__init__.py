"""PSSI policies, one module per catalog domain; each registers itself in ``ght_socle.policy.registry``."""
