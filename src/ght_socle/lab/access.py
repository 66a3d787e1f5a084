"""SSH access to the lab: the admin key, host keys read from the VMs' consoles, ssh invocations.

Host key checking stays on: the lab never trusts a key on first use. Each VM's cloud-init prints
its freshly generated host keys on the serial console between ``BEGIN/END SSH HOST KEY KEYS``
markers; the lab reads them from the console log QEMU writes, and they become the inventory's
``known_hosts`` (``<name> <type> <key>``, matched through ``HostKeyAlias <name>``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ght_socle.errors import SocleError
from ght_socle.lab.tools import require_tools, run

BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----"
END_KEYS = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def ensure_admin_key(directory: Path, kept: Path) -> Path:
    """The lab's ed25519 admin key in ``directory`` (private key path).

    It is a copy of the key kept in ``kept`` (generated once per cache): VMs resumed from a saved
    state trust the key they were provisioned with, so every lab of this cache uses the same one.
    It opens only lab VMs, which only this host reaches.
    """
    require_tools("ssh-keygen")
    key = directory / "id_ed25519"
    if key.exists():
        return key
    source = kept / "id_ed25519"
    if not source.exists():
        kept.mkdir(parents=True, exist_ok=True)
        kept.chmod(0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ghtadmin@ght-socle-lab", "-f", source],
            what="generate the lab admin key")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for suffix in ("", ".pub"):
        shutil.copyfile(f"{source}{suffix}", f"{key}{suffix}")
    key.chmod(0o600)
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


# The host's time is sent only once the session is up and the guest asks for it, so the guest's
# clock is off by one trip through the bastion at most, not by the SSH handshake. The active timers
# are stopped across the jump and started again: a calendar timer (apt-daily, apt-daily-upgrade,
# logrotate...) whose time the jump crossed would otherwise fire at once and hold dpkg's lock under the
# roles; started again, each is armed from the new time, as on a boot.
_SET_CLOCK = (
    "timers=$(systemctl list-units --type=timer --state=active --plain --no-legend | cut -d' ' -f1); "
    '{ [ -z "$timers" ] || sudo -n systemctl stop $timers; } && echo ready && read -r now && '
    'sudo -n date -u -s "@$now" >/dev/null && { [ -z "$timers" ] || sudo -n systemctl start $timers; } && echo set')


def set_guest_clock(ssh_config: Path, host: str, timeout: float = 180.0) -> None:
    """Set ``host``'s clock from this host's (a resumed guest's clock stood still while it was saved)."""
    process = subprocess.Popen(ssh_command(ssh_config, host, [_SET_CLOCK]), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        if process.stdout.readline().strip() == "ready":
            try:
                process.stdin.write(f"{time.time():.3f}\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass  # ssh is gone: its exit status and stderr say why
        output, error = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise SocleError(f"setting the clock of {host} timed out", where="lab") from None
    if process.returncode != 0 or "set" not in output:
        detail = error.strip().splitlines()[-1] if error.strip() else f"exit {process.returncode}"
        raise SocleError(f"could not set the clock of {host}: {detail}", where="lab")


def set_guest_clocks(ssh_config: Path, hosts: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        for future in [pool.submit(set_guest_clock, ssh_config, host) for host in hosts]:
            future.result()
