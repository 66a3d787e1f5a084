"""Debian 12's OpenStack packages, installed without letting them configure or start anything.

Debian's maintainer scripts (openstack-pkg-tools) can create databases, register endpoints and
start daemons. The project writes every configuration file from its own templates and starts its
own processes, so the install runs with:

- a ``policy-rc.d`` that denies every service start (exit 101), restored afterwards, whatever was
  there before;
- debconf answers that decline every "configure the database / RabbitMQ / keystone / endpoint"
  question the packages ask, with ``DEBIAN_FRONTEND=noninteractive``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ght_socle.errors import SocleError

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
DENY_ALL_STARTS = "#!/bin/sh\n# Installed while ght-socle installs packages: no service may start.\nexit 101\n"

# The debconf owners of the packages, and the yes/no questions openstack-pkg-tools asks: all "no".
DEBCONF_OWNERS = ("keystone", "glance", "nova", "novaapi", "placement", "neutron", "cinder")
DECLINED_QUESTIONS = ("configure_db", "configure_rabbit", "configure_ksat", "configure_api-endpoint",
                      "register-endpoint", "create-admin-tenant", "configure_nova", "configure_neutron",
                      "configure_placement")


def missing(packages: Iterable[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not report as installed."""
    absent = []
    for package in packages:
        query = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package],
                               capture_output=True, text=True, check=False)
        if query.stdout.strip() != "installed":
            absent.append(package)
    return absent


def debconf_answers() -> str:
    """debconf-set-selections input declining every self-configuration question."""
    return "".join(f"{owner} {owner}/{question} boolean false\n"
                   for owner in DEBCONF_OWNERS for question in DECLINED_QUESTIONS)


@contextmanager
def services_denied(policy_file: Path = POLICY_RC_D) -> Iterator[None]:
    """Deny every service start for the duration of the block, then put back what was there."""
    previous = policy_file.read_bytes() if policy_file.exists() else None
    previous_mode = policy_file.stat().st_mode if policy_file.exists() else None
    policy_file.write_text(DENY_ALL_STARTS)
    policy_file.chmod(0o755)
    try:
        yield
    finally:
        if previous is None:
            policy_file.unlink(missing_ok=True)
        else:
            policy_file.write_bytes(previous)
            if previous_mode is not None:
                policy_file.chmod(previous_mode)


def ensure_installed(packages: Iterable[str], progress: Callable[[str], None]) -> list[str]:
    """Install the missing ``packages``; return those installed. One-line errors, exit 2 upstream."""
    absent = missing(packages)
    if not absent:
        return []
    if os.geteuid() != 0:
        raise SocleError(f"need root to install the Debian packages: {' '.join(absent)}")
    if shutil.which("apt-get") is None:
        raise SocleError(f"apt-get not found: install the Debian packages {' '.join(absent)} by hand")
    progress(f"installing Debian packages (first time: several minutes): {' '.join(absent)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}
    with tempfile.NamedTemporaryFile("w", suffix=".debconf", delete=False) as answers:
        answers.write(debconf_answers())
    try:
        _run(["debconf-set-selections", answers.name], env, "debconf-set-selections")
        with services_denied():
            _run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                  "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", *absent],
                 env, "apt-get install")
    finally:
        os.unlink(answers.name)
    still = missing(absent)
    if still:
        raise SocleError(f"apt-get install did not install: {' '.join(still)}")
    return absent


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        hint = " (run `apt-get update` first?)" if "Unable to locate package" in detail else ""
        raise SocleError(f"{what} failed: {detail}{hint}")
