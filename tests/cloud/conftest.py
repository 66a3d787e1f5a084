"""Fixtures of tests/cloud (defined in cloud_support and preview_support, module names no other test directory uses)."""

from cloud_support import cloud, cloud_session
from preview_support import engine

__all__ = ["cloud", "cloud_session", "engine"]
