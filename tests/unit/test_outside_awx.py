"""AWX / AAP: the execution environment definition, rendered by the real ``ansible-builder create``.

Building the image needs podman or docker, which the machines running these tests lack; the build
context ansible-builder writes (Containerfile and the dependency files it copies) is what is checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ght_socle import paths
from ght_socle.trust.yamlio import load_yaml

ROOT = paths.project_root()


def test_the_collections_awx_installs_are_the_collection_dependencies() -> None:
    wanted = {entry["name"] for entry in load_yaml(ROOT / "collections" / "requirements.yml")["collections"]}
    assert wanted == set(load_yaml(ROOT / "galaxy.yml")["dependencies"])


def test_ansible_builder_renders_the_build_context(tmp_path: Path) -> None:
    builder = Path(sys.executable).parent / "ansible-builder"  # a dev dependency (pyproject.toml)
    context = tmp_path / "context"
    result = subprocess.run([str(builder), "create", "--file", "execution-environment.yml", "--context", str(context),
                             "--output-filename", "Containerfile"],
                            cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    base_image = load_yaml(ROOT / "execution-environment.yml")["images"]["base_image"]["name"]
    assert f"ARG EE_BASE_IMAGE=\"{base_image}\"" in containerfile
    assert "ansible-galaxy" in containerfile and "bindep" in containerfile
    build = context / "_build"
    assert (build / "requirements.yml").read_text(encoding="utf-8") == \
        (ROOT / "collections" / "requirements.yml").read_text(encoding="utf-8")
    assert (build / "bindep.txt").read_text(encoding="utf-8") == (ROOT / "bindep.txt").read_text(encoding="utf-8")
    assert "cryptography" in (build / "requirements.txt").read_text(encoding="utf-8")
