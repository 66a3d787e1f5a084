"""Where the local cloud keeps its state: ``$SOCLE_STATE/cloud`` (default ``.socle/cloud``, git-ignored).

Nothing of the local cloud lives in /etc or /var/lib: configuration, databases, image store, keys,
logs and pids are all under this one directory, so ``down --purge`` removes every trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ght_socle import paths

CLOUD_NAME = "ght-socle-local"


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(paths.state_dir() / "cloud")

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def tls(self) -> Path:
        """The local cloud's certificate authority and the TLS front's certificate (tls.py)."""
        return self.root / "tls"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def openrc(self) -> Path:
        return self.root / "openrc"

    @property
    def mysql_socket(self) -> Path:
        return self.run / "mysqld.sock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def make(self) -> None:
        for directory in (self.root, self.etc, self.data, self.logs, self.run):
            directory.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
