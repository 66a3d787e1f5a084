"""The CLI keeps one style: help everywhere, exit 2 with one line on bad input."""

from __future__ import annotations

import subprocess
import sys

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
