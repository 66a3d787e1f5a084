"""sudoers specification filter for the accounts role (PSSI ADM-011 to ADM-014, BP-028 R40, R42-R44).

``ght.socle.ght_sudoers_problems`` refuses offending rules before any sudoers change. It is the
conformance suite's own analysis (``ght_socle.conform.parsers.sudo_spec_problems``), so what the role
refuses and what conformance reports can never differ. Like the collection's vars plugin and lookup,
it needs the ght-socle library in the controller's Python (the execution environment installs it).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def ght_sudoers_problems(lines: list[str], admin_principals: list[str], editors: list[str]) -> dict[str, list[str]]:
    """Problems of sudoers user specifications, by PSSI rule (see ``sudo_spec_problems``)."""
    try:
        from ght_socle.conform.parsers import sudo_spec_problems
    except ImportError as exc:
        raise AnsibleFilterError(f"the ght-socle library is not importable on the controller: {exc}") from exc
    return sudo_spec_problems(list(lines), list(admin_principals), list(editors))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ght_sudoers_problems": ght_sudoers_problems}
