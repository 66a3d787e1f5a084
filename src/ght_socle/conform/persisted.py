"""The state a host's files will give it at its next boot, computed from the gathered files.

A hardened host can pass every live check and still lose a setting at its next boot, when a file
that is read later at boot undoes it. The rules that hold both states compare the live value with
the one computed here; the evidence names the state that drifts (``live`` or ``persisted``).

Kernel parameters follow systemd-sysctl(8) and sysctl.d(5) as systemd 252 (Debian 12) applies them:

* the ``*.conf`` files of ``/etc/sysctl.d``, ``/run/sysctl.d``, ``/usr/local/lib/sysctl.d`` and
  ``/usr/lib/sysctl.d`` are read in the order of their file names, whatever their directory; a name
  found in a directory earlier in that list hides the same name in the later ones, and a link to
  /dev/null masks it;
* a later assignment of a key replaces an earlier one; ``#`` and ``;`` start comments; a ``-`` before
  the key only silences a failure to write it; ``/`` may separate the key's parts instead of ``.``;
* a key with a glob (``net.ipv4.conf.*.rp_filter``) applies to every matching key that no line sets
  explicitly, except the keys excluded by a bare ``-key`` line.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class SysctlSetting:
    """A value a sysctl.d file sets at boot, and the file whose line is applied last."""

    value: str
    source: str


@dataclass
class BootSysctl:
    """The merged sysctl.d configuration: what systemd-sysctl writes at boot."""

    explicit: dict[str, SysctlSetting] = field(default_factory=dict)
    globs: dict[str, SysctlSetting] = field(default_factory=dict)  # pattern -> setting, in boot order
    excluded: set[str] = field(default_factory=set)  # keys a bare ``-key`` line keeps out of the globs

    def get(self, key: str) -> SysctlSetting | None:
        """The value ``key`` gets at boot, or None when no file sets it (the kernel default stays)."""
        if key in self.explicit:
            return self.explicit[key]
        if key in self.excluded:
            return None
        matching = [setting for pattern, setting in self.globs.items() if fnmatch.fnmatchcase(key, pattern)]
        return matching[-1] if matching else None


def normalize_sysctl_key(key: str) -> str:
    """``net/ipv4/ip_forward`` -> ``net.ipv4.ip_forward``: the first separator decides, as in systemd."""
    first = next((char for char in key if char in "./"), ".")
    if first == "/":
        key = key.translate(str.maketrans("./", "/."))
    return key


def boot_order(files: list[Any]) -> list[tuple[str, str | None]]:
    """``(path, text)`` of the files systemd-sysctl reads, in the order it applies them.

    ``files`` is the gather script's ``sysctl_d`` section: ``[directory, name, text or None]`` in the
    directories' order of priority; None is a masked name, which hides the name and is not read.
    """
    chosen: dict[str, tuple[str, str | None]] = {}
    for directory, name, text in files:
        chosen.setdefault(name, (f"{directory}/{name}", text))
    return [chosen[name] for name in sorted(chosen)]


def merge_sysctl_files(files: list[Any]) -> BootSysctl:
    merged = BootSysctl()
    for path, text in boot_order(files):
        for raw in (text or "").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            key, separator, value = line.partition("=")
            key = normalize_sysctl_key(key.strip().removeprefix("-").strip())
            if not separator:
                if line.startswith("-"):
                    merged.excluded.add(key)
                continue
            target = merged.globs if any(char in key for char in GLOB_CHARACTERS) else merged.explicit
            target.pop(key, None)  # a later assignment is applied later: keep the boot order
            target[key] = SysctlSetting(" ".join(value.split()), path)
    return merged


# Commands a modprobe.d ``install`` line runs instead of loading the module: the load fails or does nothing.
BLOCKING_INSTALL_COMMANDS = ("/bin/false", "/usr/bin/false", "/bin/true", "/usr/bin/true")


def module_load_problem(dry_run: dict[str, Any]) -> str | None:
    """What the next load of a kernel module would do, from ``modprobe -n -v MODULE``; None when it cannot load.

    ``dry_run`` is the gather script's ``{"rc", "output", "error"}``. modprobe merges every modprobe.d
    directory the way a load at boot or at a device's arrival does, and prints the commands that load
    would run: ``install /bin/false`` when an install line replaces it, ``insmod <path>`` when the module
    would enter the kernel, ``builtin <name>`` when it is in the kernel image. A module already in the
    kernel prints nothing (the live state reports it). Raises ValueError when modprobe itself failed.
    """
    if dry_run.get("rc") is None:
        raise ValueError("modprobe is not installed")
    if dry_run["rc"] != 0:
        if "not found" in dry_run.get("error", ""):
            return None  # this kernel has no such module: nothing to load
        raise ValueError(f"modprobe -n -v exited {dry_run['rc']}: {dry_run.get('error', '')[-200:]}")
    commands = [line.split() for line in dry_run.get("output", "").splitlines() if line.strip()]
    if any(words[0] == "install" and len(words) > 1 and words[1] in BLOCKING_INSTALL_COMMANDS for words in commands):
        return None
    if any(words[0] == "builtin" for words in commands):
        return "built into the kernel: no modprobe.d line can block it"
    inserted = [words[-1] for words in commands if words[0] == "insmod"]
    if inserted:
        return f"would load {inserted[-1]}: no install line blocks it"
    return "runs no blocking install command"
