"""PSSI policies over declared infrastructure: registry, engine, waivers, reports, CrossGuard pack.

``socle check`` runs a Pulumi program offline (``ght_socle.plan.run_plan``) and evaluates every
policy of :mod:`ght_socle.policy.registry` over the plan; ``policies/__main__.py`` serves the same
policies to ``pulumi preview --policy-pack policies``.
"""
