"""sudo specification analysis (ADM-011 to ADM-014, BP-028 R40, R42-R44).

The role's pre-flight uses the collection filter ``ght.socle.ght_sudoers_problems``; the conformance
suite uses ``ght_socle.conform.parsers.sudo_spec_problems``, which the filter calls. Every case runs
through both entry points, so the pre-flight refuses exactly what the audit reports.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ght_socle.conform.parsers import sudo_spec_problems

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "ght_sudoers.py"
ADMINS = ["root", "%ght-admins", "%ght-automation"]
EDITORS = ["vi", "vim", "nano", "less"]


def plugin_filter() -> Callable[..., dict[str, list[str]]]:
    spec = importlib.util.spec_from_file_location("ght_sudoers_plugin", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters: dict[str, Any] = module.FilterModule().filters()
    return filters["ght_sudoers_problems"]  # type: ignore[no-any-return]


IMPLEMENTATIONS = {"collection filter": plugin_filter(), "conformance parser": sudo_spec_problems}

# (sudoers line, rule ids expected to object)
CASES = [
    ("%ght-admins ALL=(ALL:ALL) ALL", set()),
    ("%ght-automation ALL=(ALL:ALL) NOPASSWD: ALL", set()),
    ("root\tALL=(ALL:ALL) ALL", set()),
    ("Defaults:%ght-admins,%ght-automation !noexec,!requiretty", set()),
    ("Cmnd_Alias EDIT = /usr/bin/vim", set()),
    ("@includedir /etc/sudoers.d", set()),
    ("# %ops ALL=(ALL) ALL", set()),
    ("%ops ALL=(www-data) /usr/bin/systemctl restart app.service", set()),
    ("%ops ALL=(www-data) NOPASSWD: /usr/bin/systemctl status app.service, sudoedit /etc/app/app.conf", set()),
    ("%ops ALL=(www-data) /usr/bin/id \"\"", set()),
    ("%ops ALL=(root) /usr/bin/systemctl restart app.service", {"ADM-011"}),
    ("%ops ALL= /usr/bin/systemctl restart app.service", {"ADM-011"}),
    ("%ops ALL=(ALL) /usr/bin/systemctl restart app.service", {"ADM-011"}),
    ("bob ALL=(ALL:ALL) ALL", {"ADM-011", "ADM-013"}),
    ("%ops ALL=(www-data) /usr/bin/systemctl restart app.service, !/usr/bin/su", {"ADM-012"}),
    ("%ops ALL=(ALL, !root) /usr/bin/id \"\"", {"ADM-011", "ADM-012"}),
    ("%ops ALL=(www-data) /usr/bin/systemctl", {"ADM-013"}),
    ("%ops ALL=(www-data) /usr/bin/journalctl -u *", {"ADM-013"}),
    ("%ops ALL=(www-data) /usr/bin/vim /etc/app/app.conf", {"ADM-014"}),
    ("%ght-admins ALL=(ALL:ALL) /usr/bin/nano /etc/hosts", {"ADM-014"}),
    ("%ops ALL=(www-data) /bin/less /var/log/app.log", {"ADM-014"}),
]


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_objects_to_its_own_misuse(implementation: str, line: str, expected: set[str]) -> None:
    found = IMPLEMENTATIONS[implementation]([line], ADMINS, EDITORS)
    assert set(found) == {"ADM-011", "ADM-012", "ADM-013", "ADM-014"}
    assert {rule for rule, problems in found.items() if problems} == expected, found


def test_both_implementations_give_the_same_messages() -> None:
    lines = [line for line, _ in CASES]
    results = [impl(lines, ADMINS, EDITORS) for impl in IMPLEMENTATIONS.values()]
    assert results[0] == results[1]
