"""LOG-009 on the lab's VMs: the re-verification timer ships signed summaries that the SOC can trust.

After the converge (test_30) every Linux host has shipped a first summary, without drift, through
rsyslog over TLS to the log collector. A drift made by hand (a kernel parameter reset at runtime, a new
APT source file) is named in the next summary, read from the collector's storage and verified with the
lab CA; a summary forged on the host with another payload is refused by the reader. The host is then put
back and a last run reports no drift, so the lab stays usable for the next tests.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conform_lab import ensure_hardened
from lab_support import Lab

from ght_socle.catalog import default_catalog
from ght_socle.paths import state_dir
from ght_socle.reverify.summary import CollectorReading, load_ca, read_lines

FORWARD_TIMEOUT = 120
SOURCE_FILE = "/etc/apt/sources.list.d/reverify-drift.list"
STORAGE = str(default_catalog().effective["LOG-006"].params.get("collector_storage_dir", "/var/log/remote"))


@pytest.fixture(scope="module")
def hardened_lab(lab: Lab) -> Lab:
    return ensure_hardened(lab)


def lab_ca(lab: Lab) -> Path:
    root = Path(lab.env["SOCLE_STATE"]) if "SOCLE_STATE" in lab.env else state_dir()
    return root / "pki" / lab.inventory.name / "ca.crt"


def collector(lab: Lab) -> str:
    return lab.group("log_collector")[0]


def forwarding_hosts(lab: Lab) -> list[str]:
    """The Linux hosts whose logs go to the collector (the collector keeps its own locally: LOG-003)."""
    return [host for host in lab.group("linux") if host not in lab.group("log_collector")]


def read_collector(lab: Lab, host: str) -> CollectorReading:
    """The summaries of ``host`` as the SOC finds them: in the collector's storage, or in the collector's own
    journal for the collector itself."""
    if host in lab.group("log_collector"):
        where, command = "journal", "journalctl -t ght-reverify -o cat --no-pager"
    else:
        where = f"{STORAGE}/{host}"
        command = f"cat {where}/*.log 2>/dev/null || true"
    result = lab.run(collector(lab), command, sudo=True)
    assert result.returncode == 0, result.stderr
    lines = [(f"{collector(lab)}:{where}", line) for line in result.stdout.splitlines()]
    return read_lines(lines, load_ca(lab_ca(lab)))


def run_agent(lab: Lab, host: str) -> str:
    """Start the host's service as its timer does; the time of the summary it shipped."""
    result = lab.run(host, "systemctl start ght-reverify.service; rc=$?; "
                           "python3 -c 'import json; print(json.load(open(\"/var/lib/ght-reverify/last-summary.json\"))"
                           "[\"time\"])'; exit $rc", sudo=True, timeout=900)
    assert result.returncode == 0, f"{host}: ght-reverify.service failed:\n{result.stdout}{result.stderr}" + \
        lab.run(host, "journalctl -u ght-reverify.service -n 20 --no-pager", sudo=True).stdout
    return result.stdout.strip().splitlines()[-1]


def wait_for_summary(lab: Lab, host: str, shipped_at: str) -> CollectorReading:
    """The collector's reading once the summary shipped at ``shipped_at`` arrived (rsyslog forwards it)."""
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while True:
        reading = read_collector(lab, host)
        if host in reading.latest and reading.latest[host].time >= shipped_at:
            return reading
        assert time.monotonic() < deadline, f"no summary of {host} at {shipped_at} on the collector: {reading}"
        time.sleep(5)


def test_every_linux_host_shipped_a_clean_signed_summary(hardened_lab: Lab) -> None:
    for host in hardened_lab.group("linux"):
        reading = read_collector(hardened_lab, host)
        assert host in reading.latest, f"{host}: no trusted summary on the collector (refused: {reading.refused})"
        summary = reading.latest[host]
        assert (summary.status, summary.drift, summary.errors) == ("ok", [], []), summary
        assert summary.catalog == default_catalog().meta.version


def test_a_drift_is_named_in_a_signed_summary_and_a_forgery_is_refused(hardened_lab: Lab) -> None:
    host = hardened_lab.group("dpi_app")[0] if hardened_lab.group("dpi_app") else hardened_lab.group("linux")[0]
    inject = hardened_lab.run(host, f"sysctl -q -w fs.protected_fifos=1 && echo '# drift' > {SOURCE_FILE}", sudo=True)
    assert inject.returncode == 0, inject.stderr
    try:
        shipped_at = run_agent(hardened_lab, host)
        summary = wait_for_summary(hardened_lab, host, shipped_at).latest[host]
        assert summary.status == "drift", summary
        assert "sysctl: fs.protected_fifos (2 -> 1)" in summary.drift
        assert any(item.startswith(f"dirs: {SOURCE_FILE} (absent -> ") for item in summary.drift), summary.drift
        assert any(item.startswith(f"texts: {SOURCE_FILE} (absent -> ") for item in summary.drift), summary.drift

        # A local root forges a clean summary from the drifted one: its signature no longer matches.
        forge = (
            "import base64, json, subprocess; "
            "line = json.load(open('/var/lib/ght-reverify/last-summary.json'))['line']; "
            "head, rest = line.split(' payload=', 1); payload, tail = rest.split(' ', 1); "
            "doc = json.loads(base64.b64decode(payload)); doc.update(status='ok', drift=[], drift_count=0, "
            "time=doc['time'].replace('+00:00', '+00:01')); "
            "forged = base64.b64encode(json.dumps(doc, sort_keys=True, separators=(',', ':')).encode()).decode(); "
            "subprocess.run(['logger', '--size', '16384', '-p', 'authpriv.notice', '-t', 'ght-reverify', "
            "head + ' payload=' + forged + ' ' + tail], check=True)")
        forged = hardened_lab.run(host, f"python3 -c \"{forge}\"", sudo=True)
        assert forged.returncode == 0, forged.stderr
        deadline = time.monotonic() + FORWARD_TIMEOUT
        while not (reading := read_collector(hardened_lab, host)).refused:
            assert time.monotonic() < deadline, "the forged summary never reached the collector"
            time.sleep(5)
        assert reading.refused[-1][1].startswith("bad signature"), reading.refused
        assert reading.latest[host].status == "drift", "the forged clean summary was trusted"
    finally:
        restore = hardened_lab.run(host, f"sysctl -q -w fs.protected_fifos=2; rm -f {SOURCE_FILE}", sudo=True)
        assert restore.returncode == 0, restore.stderr
    shipped_at = run_agent(hardened_lab, host)
    assert wait_for_summary(hardened_lab, host, shipped_at).latest[host].status == "ok"


def test_socle_reverify_reads_a_copy_of_the_collector_storage(hardened_lab: Lab, tmp_path: Path) -> None:
    """What the SOC runs: `socle reverify` on the collector's files (copied here), one row per host."""
    archive = hardened_lab.run(collector(hardened_lab), f"tar -C {STORAGE} -cf - . | base64 -w0", sudo=True)
    assert archive.returncode == 0, archive.stderr
    storage = tmp_path / "remote"
    storage.mkdir()
    subprocess.run(["tar", "-C", str(storage), "-xf", "-"], input=base64.b64decode(archive.stdout), check=True)
    refused = sum(len(read_collector(hardened_lab, host).refused) for host in forwarding_hosts(hardened_lab))
    completed = subprocess.run([sys.executable, "-m", "ght_socle.cli", "reverify", "--logs", str(storage),
                                "--ca", str(lab_ca(hardened_lab))], capture_output=True, text=True, check=False)
    # A refused message (the forgery of the previous test, when it ran) is a finding: exit 1.
    assert completed.returncode == (1 if refused else 0), completed.stdout + completed.stderr
    for host in forwarding_hosts(hardened_lab):
        assert any(line.split()[:1] == [host] and " ok " in line for line in completed.stdout.splitlines()), \
            completed.stdout
    assert completed.stdout.count("REFUSED ") == refused
