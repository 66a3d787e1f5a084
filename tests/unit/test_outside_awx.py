"""AWX / AAP: the execution environment definition, rendered by the real ``ansible-builder create``.

Building the image needs podman or docker, which the machines running these tests lack; the build
context ansible-builder writes (Containerfile and the dependency files it copies) is what is checked.
"""

from __future__ import annotations

import shutil
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
    # The definition beside the files it names, and the ght-socle wheel built as the docs say.
    project = tmp_path / "project"
    (project / "collections").mkdir(parents=True)
    for name in ("execution-environment.yml", "bindep.txt", "collections/requirements.yml"):
        shutil.copyfile(ROOT / name, project / name)
    # Built from a copy: setuptools writes build/ and egg-info beside the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(project / "dist"), str(source)],
                           capture_output=True, text=True, check=False, timeout=300)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    context = tmp_path / "context"
    result = subprocess.run([str(builder), "create", "--file", "execution-environment.yml", "--context", str(context),
                             "--output-filename", "Containerfile"],
                            cwd=project, capture_output=True, text=True, check=False, timeout=300)
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
    # The image carries the library the ght.socle.pssi vars plugin imports.
    assert [wheel.name for wheel in (build / "ght-socle").glob("ght_socle-*.whl")], sorted(build.iterdir())
    assert "pip install --no-cache-dir /tmp/ght-socle/" in containerfile
