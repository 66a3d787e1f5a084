"""sudoers specification filter for the accounts role (PSSI ADM-011 to ADM-014, BP-028 R40, R42-R44).

``ght.socle.ght_sudoers_problems`` refuses offending rules before any sudoers change. The collection
carries no dependency on the ght_socle package: the conformance suite has its own copy of this
analysis (``ght_socle.conform.parsers.sudo_spec_problems``) and a unit test runs the same cases
through both, so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

# Tags and options that may precede a command (sudoers(5) Tag_Spec, Option_Spec).
_PREFIX = re.compile(r"^(?:(?:NO)?(?:PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT)\s*:\s*"
                     r"|(?:CWD|CHROOT|ROLE|TYPE|TIMEOUT|NOTBEFORE|NOTAFTER)=\S+\s+)+")
ROOT_TARGETS = {"ALL", "root", "#0"}


def _split_commas(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<!\\),", text) if part.strip()]


def ght_sudoers_problems(lines: list[str], admin_principals: list[str], editors: list[str]) -> dict[str, list[str]]:
    """Problems of sudoers user specifications, by PSSI rule.

    ``lines``: sudoers lines (comments, Defaults, aliases and includes are skipped). A principal of
    ``admin_principals`` (root, the admin group, the automation entry) may run ALL as root (ADM-006);
    every other principal gets non-root targets (R40) and explicit arguments (R43). Nobody gets a
    negation (R42) or an editor instead of sudoedit (R44).
    """
    problems: dict[str, list[str]] = {"ADM-011": [], "ADM-012": [], "ADM-013": [], "ADM-014": []}
    admins = set(admin_principals)
    editor_names = set(editors)
    for raw in lines:
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(("#include", "@include")) else ""
        if not line or line.startswith("Defaults") or line.split(None, 1)[0].endswith("_Alias") or "=" not in line:
            continue
        head, _, spec = line.partition("=")
        principals = _split_commas(head.split(None, 1)[0])
        privileged = all(p in admins for p in principals)
        spec = spec.strip()
        runas = "root"
        match = re.match(r"^\(([^)]*)\)\s*", spec)
        if match:
            runas, spec = match.group(1), spec[match.end():]
        users = _split_commas(runas.split(":", 1)[0]) or (["root"] if ":" not in runas else [])
        if any(u.startswith("!") for u in users):
            problems["ADM-012"].append(f"{line!r}: negation in the target users")
        if not privileged and (any(u.lstrip("!") in ROOT_TARGETS for u in users) or not users):
            problems["ADM-011"].append(f"{line!r}: runs commands as root for {', '.join(principals)} "
                                       "(only the admin groups may; give a non-privileged target user)")
        for command in _split_commas(spec):
            command = _PREFIX.sub("", command).strip()
            if command.startswith("!"):
                problems["ADM-012"].append(f"{line!r}: negated command {command!r} (a blacklist is bypassed by a copy)")
                continue
            words = command.split()
            if not words:
                continue
            name = words[0].rsplit("/", 1)[-1]
            if name in editor_names:
                problems["ADM-014"].append(f"{line!r}: editor {words[0]} (use sudoedit)")
            if privileged:
                continue
            if words[0] == "ALL":
                problems["ADM-013"].append(f"{line!r}: ALL commands for {', '.join(principals)}")
            elif name != "sudoedit" and len(words) == 1:
                problems["ADM-013"].append(f"{line!r}: {words[0]} without arguments allows any argument "
                                           "(list them, or \"\" for none)")
            elif any("*" in word for word in words[1:]):
                problems["ADM-013"].append(f"{line!r}: wildcard in the arguments of {words[0]}")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ght_sudoers_problems": ght_sudoers_problems}
