"""The real Pulumi engine: the pinned CLI built from Go modules, and the environment to run it.

``socle plan`` runs programs under Pulumi's mock engine and needs none of this; ``socle engine``
builds the CLI (``make engine``), prints its environment and stores the stacks' secrets with it.
"""

from ght_socle.engine.build import Engine, ensure_engine, find_engine
from ght_socle.engine.env import EngineSettings, engine_environment

__all__ = ["Engine", "EngineSettings", "engine_environment", "ensure_engine", "find_engine"]
