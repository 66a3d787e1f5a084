"""SSH access to the lab: the admin key, host keys read from the VMs' consoles, ssh invocations.

Host key checking stays on: the lab never trusts a key on first use. Each VM's cloud-init prints
its freshly generated host keys on the serial console between ``BEGIN/END SSH HOST KEY KEYS``
markers; the lab reads them from the console log QEMU writes, and they become the inventory's
``known_hosts`` (``<name> <type> <key>``, matched through ``HostKeyAlias <name>``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ght_socle.lab.tools import require_tools, run

BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----"
END_KEYS = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def ensure_admin_key(directory: Path) -> Path:
    """The lab's ed25519 admin key (private key path); generated once per lab."""
    require_tools("ssh-keygen")
    key = directory / "id_ed25519"
    if not key.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ghtadmin@ght-socle-lab", "-f", key],
            what="generate the lab admin key")
    return key


def public_key(private_key: Path) -> str:
    return Path(f"{private_key}.pub").read_text().strip()


def host_keys_from_console(console: Path) -> list[str] | None:
    """The ``<type> <key>`` pairs printed by cloud-init on ``console``, or None if not printed yet."""
    try:
        text = console.read_text(errors="replace")
    except OSError:
        return None
    start = text.find(BEGIN_KEYS)
    end = text.find(END_KEYS, start + 1)
    if start < 0 or end < 0:
        return None
    keys = []
    for line in text[start + len(BEGIN_KEYS):end].splitlines():
        fields = line.strip().split()
        # Console lines may carry a kernel timestamp or prefix: find the key type.
        for position, field_text in enumerate(fields[:-1]):
            if field_text in KEY_TYPES:
                keys.append(f"{field_text} {fields[position + 1]}")
                break
    return keys or None


def ssh_command(ssh_config: Path, host: str, command: list[str] | None = None, *,
                connect_timeout: int = 90) -> list[str]:
    """``ssh -F <ssh_config> <host> [command]``, batch mode (never prompts)."""
    argv = ["ssh", "-F", str(ssh_config), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", host]
    if command:
        argv += ["--", *command]
    return argv


def ssh_works(ssh_config: Path, host: str, timeout: float = 120.0) -> bool:
    try:
        completed = subprocess.run(ssh_command(ssh_config, host, ["true"]), capture_output=True, timeout=timeout,
                                   check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    return completed.returncode == 0
