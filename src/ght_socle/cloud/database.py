"""The local cloud's MariaDB: its own data directory, reachable through a unix socket only.

The server runs with ``--no-defaults`` (Debian's /etc/mysql is neither read nor changed) and
``--skip-networking``: no TCP port at all. Each OpenStack database gets a user of its own whose
password is generated and kept in the state directory's secrets file.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ght_socle.cloud.layout import Layout
from ght_socle.cloud.processes import Daemon, spawn
from ght_socle.errors import SocleError

READY_SECONDS = 60.0


def url(layout: Layout, database: str, password: str) -> str:
    """SQLAlchemy URL of ``database`` through the server's unix socket."""
    return f"mysql+pymysql://{database}:{password}@localhost/{database}?unix_socket={layout.mysql_socket}&charset=utf8"


def data_dir(layout: Layout) -> Path:
    return layout.data / "mysql"


def initialise(layout: Layout) -> None:
    """Create the data directory (system tables) once."""
    if (data_dir(layout) / "mysql").is_dir():
        return
    installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if installer is None:
        raise SocleError("mariadb-install-db not found: install the Debian package mariadb-server")
    scratch = data_dir(layout).with_name("mysql.new")
    shutil.rmtree(scratch, ignore_errors=True)
    result = subprocess.run([installer, "--no-defaults", f"--datadir={scratch}", "--user=root",
                             "--auth-root-authentication-method=socket", "--skip-test-db"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise SocleError(f"mariadb-install-db failed: {lines[-1] if lines else result.returncode}")
    scratch.rename(data_dir(layout))


def start(layout: Layout) -> Daemon:
    server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    if not Path(server).exists():
        raise SocleError("mariadbd not found: install the Debian package mariadb-server")
    # Small on purpose: a handful of lab databases on a shared 2-core machine.
    command = [server, "--no-defaults", f"--datadir={data_dir(layout)}", f"--socket={layout.mysql_socket}",
               f"--pid-file={layout.run / 'mysqld.pid'}", "--skip-networking", "--user=root",
               f"--log-error={layout.log('mariadb')}", "--innodb-buffer-pool-size=64M",
               "--performance-schema=OFF", "--max-connections=300", "--character-set-server=utf8mb4",
               "--collation-server=utf8mb4_general_ci", "--skip-name-resolve"]
    return spawn("mariadb", command, layout.log("mariadb"))


def wait_ready(layout: Layout, daemon_alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if ping(layout):
            return
        if not daemon_alive():
            break
        time.sleep(0.5)
    raise SocleError(f"MariaDB did not start: see {layout.log('mariadb')}")


def ping(layout: Layout) -> bool:
    admin = shutil.which("mariadb-admin") or "mysqladmin"
    result = subprocess.run([admin, f"--socket={layout.mysql_socket}", "-u", "root", "ping"],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0


def ensure_databases(layout: Layout, passwords: dict[str, str],
                     extra_grants: dict[str, tuple[str, ...]] | None = None) -> None:
    """Create each database and its user (password set again each time: the secrets file rules).

    ``extra_grants`` maps a user to further databases it owns (created too).
    """
    statements = []
    for databases in (extra_grants or {}).values():
        for database in databases:
            statements += [f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8;"]
    for database, password in sorted(passwords.items()):
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        statements += [f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8;",
                       f"CREATE USER IF NOT EXISTS '{database}'@'localhost' IDENTIFIED BY '{quoted}';",
                       f"ALTER USER '{database}'@'localhost' IDENTIFIED BY '{quoted}';",
                       f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{database}'@'localhost';"]
        statements += [f"GRANT ALL PRIVILEGES ON `{extra}`.* TO '{database}'@'localhost';"
                       for extra in (extra_grants or {}).get(database, ())]
    client = shutil.which("mariadb") or "mysql"
    # The SQL goes through stdin: passwords never appear in a command line.
    result = subprocess.run([client, f"--socket={layout.mysql_socket}", "-u", "root"],
                            input="\n".join(statements), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SocleError(f"creating the databases failed: {result.stderr.strip().splitlines()[-1:]}")
