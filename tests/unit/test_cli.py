"""The CLI keeps one style: help everywhere, exit 2 with one line on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ght_socle.cli import COMMAND_MODULES, main


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_unknown_option_exits_2_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["pssi", "list", "--no-such-option"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1


def test_console_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "ght_socle.cli", "--version"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("ght-socle ")


def test_lab_reboot_without_a_lab_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ght_socle.cli", "lab", "reboot", "app-01"], capture_output=True,
                            text=True, check=False, env={**os.environ, "SOCLE_STATE": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "no lab is up here" in result.stderr
    assert "Traceback" not in result.stderr
