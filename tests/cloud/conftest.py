"""Fixtures of tests/cloud (defined in cloud_support, a module name no other test directory uses)."""

from cloud_support import cloud

__all__ = ["cloud"]
