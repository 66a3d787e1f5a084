"""External tools the lab drives (qemu, debootstrap, ip, nft ...): presence checks and a runner.

Every missing tool is reported as one line naming the Debian package to install, never as a
``FileNotFoundError`` traceback from deep inside a build.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ght_socle.errors import SocleError, ToolMissingError

# tool -> Debian package that provides it (the Makefile's APT_PACKAGES installs them all).
TOOL_PACKAGES: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "genisoimage": "genisoimage",
    "ip": "iproute2",
    "nft": "nftables",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "chroot": "coreutils",
}


def require_tools(*tools: str) -> None:
    """Fail with one line (and the install command) when any of ``tools`` is not on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing})
        raise ToolMissingError(
            f"{', '.join(missing)} not found: install with "
            f"`apt-get install -y --no-install-recommends {' '.join(packages)}` (or `make deps`)",
            where="lab",
        )


def run(command: Sequence[str | Path], *, what: str, check: bool = True, capture: bool = True,
        timeout: float | None = None, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on failure raise a one-line :class:`SocleError` saying ``what`` failed and why."""
    argv = [str(part) for part in command]
    try:
        completed = subprocess.run(argv, capture_output=capture, text=True, timeout=timeout, input=input_text,
                                   check=False)
    except FileNotFoundError as exc:
        require_tools(argv[0])
        raise SocleError(f"{what}: {exc}", where="lab") from exc
    except subprocess.TimeoutExpired as exc:
        raise SocleError(f"{what}: timed out after {timeout:.0f} s", where="lab") from exc
    if check and completed.returncode != 0:
        detail = (completed.stderr or completed.stdout or "").strip().splitlines()
        last = detail[-1] if detail else f"exit status {completed.returncode}"
        raise SocleError(f"{what} failed: {last}", where="lab")
    return completed
