"""Typed access to one host's gathered facts, plus the verdict helpers the rule tests use.

A fact that is absent (its section failed, the tool printed nothing usable) raises
:class:`FactMissing`, which the plugin reports as ``error``: a rule that could not be verified is
never a pass. A tool that is simply not installed is a fact (``installed: False``), not an error.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ght_socle.conform.persisted import BootSysctl, merge_sysctl_files


class FactMissing(Exception):
    """The facts needed to decide a rule are not available for this host."""


class RuleFailed(AssertionError):
    """The host does not meet the rule; ``problems`` are the evidence, one observation per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        first = problems[0] if problems else "rule not met"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


def fail_on(problems: Iterable[str]) -> None:
    """End a rule test: pass when no problem was observed, fail with every observation otherwise."""
    found = [p for p in problems if p]
    if found:
        raise RuleFailed(found)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def config_lines(text: str | None) -> list[str]:
    """Non-empty, non-comment lines of a configuration file (``#`` comments), with continuations joined."""
    if not text:
        return []
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            lines.append(line)
    return lines


@dataclass
class HostFacts:
    host: str
    groups: frozenset[str]
    raw: dict[str, Any]

    # -- generic -------------------------------------------------------------------------------
    def section(self, name: str) -> Any:
        if name in self.raw.get("errors", {}):
            raise FactMissing(f"fact section {name!r} could not be gathered: {self.raw['errors'][name]}")
        if self.raw.get(name) is None:
            raise FactMissing(f"fact section {name!r} is missing")
        return self.raw[name]

    # -- files ---------------------------------------------------------------------------------
    def stat(self, path: str) -> dict[str, Any] | None:
        """Mode/owner of a path, None when it does not exist."""
        files = self.section("files")
        if path not in files:
            # A glob of the request lists only what exists: a path it covers but not listed is absent.
            if self._requested("stat", path):
                return None
            raise FactMissing(f"{path} was not in the list of files to stat")
        info = files[path]
        if info.get("exists") is None:
            raise FactMissing(f"cannot stat {path}: {info.get('error')}")
        return info if info["exists"] else None

    def stats_matching(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {p: i for p, i in self.section("files").items() if p.startswith(prefix) and i.get("exists")}

    def text(self, path: str) -> str | None:
        """Content of a configuration file, None when it does not exist."""
        texts = self.section("texts")
        if path in texts.get("__errors__", {}):
            raise FactMissing(f"cannot read {path}: {texts['__errors__'][path]}")
        if path not in texts and not self._requested("read", path):
            raise FactMissing(f"{path} was not in the list of files to read")
        return texts.get(path)

    def _requested(self, kind: str, path: str) -> bool:
        patterns = self.raw.get("request", {}).get(kind, [])
        return any(path == pattern or fnmatch.fnmatchcase(path, pattern) for pattern in patterns)

    def texts_under(self, prefix: str) -> dict[str, str]:
        return {p: t for p, t in sorted(self.section("texts").items())
                if p.startswith(prefix) and isinstance(t, str)}

    def dir_listing(self, path: str) -> dict[str, dict[str, Any]] | None:
        dirs = self.section("dirs")
        if path not in dirs:
            raise FactMissing(f"{path} was not in the list of directories to read")
        listing: dict[str, dict[str, Any]] | None = dirs[path]
        return listing

    # -- services, packages, sockets -----------------------------------------------------------
    def package(self, name: str) -> str | None:
        version: str | None = self.section("packages").get(name)
        return version

    @property
    def packages(self) -> dict[str, str]:
        packages: dict[str, str] = self.section("packages")
        return packages

    def unit(self, name: str) -> dict[str, str]:
        show = self.section("units")["show"]
        if name not in show:
            raise FactMissing(f"unit {name} was not in the list of units to query")
        unit: dict[str, str] = show[name]
        return unit

    def unit_active(self, name: str) -> bool:
        return self.unit(name).get("ActiveState") == "active"

    def unit_enabled(self, name: str) -> bool:
        return self.unit(name).get("UnitFileState") in ("enabled", "static", "alias", "enabled-runtime", "generated")

    def service_problems(self, name: str, lost: str) -> list[str]:
        """A service must run now (live) and be started at boot (persisted); ``lost`` says what goes without it."""
        problems = []
        if not self.unit_active(name):
            problems.append(f"{self.unit_summary(name)}: {lost} (live)")
        if not self.unit_enabled(name):
            problems.append(f"{self.unit_summary(name)}: not started at boot, {lost} after a reboot (persisted)")
        return problems

    def unit_summary(self, name: str) -> str:
        unit = self.unit(name)
        if unit.get("LoadState") == "not-found":
            return f"{name} not installed"
        return f"{name} {unit.get('ActiveState')}/{unit.get('SubState')}, unit file {unit.get('UnitFileState') or '-'}"

    @property
    def listening(self) -> list[dict[str, str]]:
        sockets: list[dict[str, str]] = self.section("sockets")
        return sockets

    # -- sshd ----------------------------------------------------------------------------------
    def sshd_options(self) -> dict[str, list[str]]:
        sshd = self.section("sshd")
        if not sshd.get("installed"):
            raise FactMissing("sshd is not installed (sshd -T not available)")
        options: dict[str, list[str]] = sshd["options"]
        return options

    def sshd(self, key: str) -> str:
        values = self.sshd_options().get(key.lower())
        if not values:
            raise FactMissing(f"sshd -T printed no {key}")
        return values[0]

    # -- kernel --------------------------------------------------------------------------------
    def sysctl(self, key: str) -> str | None:
        value: str | None = self.section("sysctl").get(key)
        return value

    def sysctl_at_boot(self) -> BootSysctl:
        """The kernel parameters the host's sysctl.d files give it at its next boot."""
        return merge_sysctl_files(self.section("sysctl_d"))

    @property
    def system(self) -> dict[str, Any]:
        system: dict[str, Any] = self.section("system")
        return system

    # -- accounts ------------------------------------------------------------------------------
    @property
    def users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self.section("accounts")["users"]
        return users

    @property
    def groups_db(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.section("accounts")["groups"]
        return groups

    @property
    def shadow(self) -> dict[str, dict[str, Any]]:
        shadow: dict[str, dict[str, Any]] = self.section("accounts")["shadow"]
        return shadow

    def group_members(self, group: str) -> set[str]:
        """Members of a group, primary-group members included."""
        entry = next((g for g in self.groups_db if g["name"] == group), None)
        if entry is None:
            return set()
        members = set(entry["members"])
        members |= {u["name"] for u in self.users if u["gid"] == entry["gid"]}
        return members

    # -- configuration helpers -----------------------------------------------------------------
    def key_values(self, path: str, separator: str = r"\s+") -> dict[str, str]:
        """``KEY value`` (login.defs) or ``key = value`` (pwquality, journald) pairs of a file."""
        values: dict[str, str] = {}
        for line in config_lines(self.text(path)):
            if line.startswith("["):
                continue
            parts = re.split(separator, line, maxsplit=1)
            if len(parts) == 2:
                values[parts[0].strip()] = parts[1].strip()
        return values

    def all_sudoers_lines(self) -> list[tuple[str, str]]:
        """(file, line) of the sudoers policy, drop-ins included (directives kept, comments dropped)."""
        lines: list[tuple[str, str]] = []
        sources = {"/etc/sudoers": self.text("/etc/sudoers"), **self.texts_under("/etc/sudoers.d/")}
        for path, text in sources.items():
            for raw in (text or "").splitlines():
                stripped = raw.strip()
                if stripped.startswith(("#include", "@include")):
                    lines.append((path, stripped))
                    continue
                line = _strip_comment(raw)
                if line:
                    lines.append((path, line))
        return lines


def mode_exceeds(mode: str, maximum: str) -> bool:
    """True when ``mode`` grants a permission bit that ``maximum`` does not (e.g. 0644 vs 0640)."""
    return bool(int(mode, 8) & ~int(maximum, 8) & 0o7777)
