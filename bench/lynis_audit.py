"""One ``lynis audit system`` on a lab VM, for the benchmarks (Debian's lynis is baked in the golden image).

Lynis is an independent yardstick: its hardening index before and after the roles says whether they
harden by a measure that is not the project's own, and its run time sets the conformance suite's
speed against a mature auditor's. Under full emulation an audit takes many minutes: it forks
thousands of short commands, each costly without KVM.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INDEX = re.compile(r"Hardening index\s*:\s*(\d+)")
WARNINGS = re.compile(r"Warnings \((\d+)\)")
SUGGESTIONS = re.compile(r"Suggestions \((\d+)\)")
TESTS = re.compile(r"Tests performed\s*:\s*(\d+)")


@dataclass
class LynisAudit:
    host: str
    index: int
    seconds: float
    warnings: int
    suggestions: int
    tests: int | None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def summary(self) -> str:
        return (f"hardening index {self.index}, {self.warnings} warning(s), {self.suggestions} suggestion(s), "
                f"{self.tests if self.tests is not None else '?'} tests, {self.seconds:.0f} s")


def audit(ssh_config: Path, host: str, timeout: float = 5400.0) -> LynisAudit:
    """Run the audit over SSH (sudo); no log or report file is left on the VM.

    Lynis lists its warnings and suggestions from its report file: the file lives in a temporary
    directory for the run, its counts are printed after the screen output, then it is removed.
    """
    audit_then_count = (
        'dir=$(mktemp -d) && lynis audit system --quick --no-colors --no-log --report-file "$dir/report.dat" 2>&1; '
        r'echo "Warnings ($(grep -c "^warning\[\]=" "$dir/report.dat"))"; '
        r'echo "Suggestions ($(grep -c "^suggestion\[\]=" "$dir/report.dat"))"; rm -rf "$dir"')
    command = f"sudo -n sh -c {shlex.quote(audit_then_count)}"
    started = time.monotonic()
    try:
        completed = subprocess.run(["ssh", "-F", str(ssh_config), "-o", "BatchMode=yes", host, command],
                                   capture_output=True, text=True, timeout=timeout, check=False,
                                   stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"lynis on {host} did not finish within {timeout:.0f} s") from None
    seconds = time.monotonic() - started
    output = completed.stdout
    index = INDEX.search(output)
    if index is None:
        raise SystemExit(f"lynis gave no hardening index on {host} (exit {completed.returncode}): "
                         f"{output[-600:]}{completed.stderr[-300:]}")

    def count(pattern: re.Pattern[str]) -> int:
        matches = pattern.findall(output)  # the counts from the report file come last
        return int(matches[-1]) if matches else 0

    tests = TESTS.search(output)
    return LynisAudit(host=host, index=int(index.group(1)), seconds=seconds, warnings=count(WARNINGS),
                      suggestions=count(SUGGESTIONS), tests=int(tests.group(1)) if tests else None)
