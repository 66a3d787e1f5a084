"""Re-verification agent run ON each Linux host by the ``ght-reverify`` systemd timer (PSSI LOG-009).

Standard library only, Python >= 3.9, installed by the ``reverify`` role as
``/usr/local/lib/ght-socle/ght-reverify`` next to the conformance fact gatherer (``gather.py``, the same
script ``socle conform`` sends over SSH, with the same request). Two commands:

``baseline``  gathers the facts, reduces them to the host's *posture* (the state the PSSI rules read,
              without what changes by itself: counters, timestamps, sizes) and records it as the
              reference. The role runs it at the end of every convergence.
``run``       gathers again, compares the posture with the reference and ships a summary — host, time,
              catalog version, drifted items — signed with the host's key of the GHT PKI (the certificate
              rsyslog already uses to reach the log zone) to the log collector through syslog.

A section that could not be gathered is reported as ``error`` in the summary (never as "no drift"),
and ``run`` exits non-zero so that systemd marks the unit failed.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile

FORMAT = "GHT-REVERIFY v1"
STATE_DIR = "/var/lib/ght-reverify"
GATHER = "/usr/local/lib/ght-socle/gather.py"
TLS_DIR = "/etc/ght-pki"
# The summary goes to syslog (authpriv: the log zone keeps it with the security events), which the
# logging role forwards to the collector over TLS. logger's default limit is 1 KiB: the summary is longer.
SHIP = ["logger", "--size", "16384", "-p", "authpriv.notice", "-t", "ght-reverify"]
MAX_DRIFT_ITEMS = 20
MAX_ITEM_LENGTH = 120
# Paths that change by themselves on a healthy host: the backup agent's and APT's run records, this
# agent's own files.
VOLATILE_PREFIXES = ("/var/lib/ght-backup/", "/var/lib/ght-reverify/", "/var/backups/ght", "/var/lib/apt/periodic/",
                     "/var/log/unattended-upgrades/")
POSTURE_SECTIONS = ("sysctl", "sysctl_d", "files", "texts", "dirs", "sshd", "units", "mounts", "nft", "nft_file",
                    "audit", "apparmor", "accounts", "packages", "sockets", "special_files", "modprobe")


def digest(value):
    """A short, stable digest of any JSON value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _volatile(path):
    return path.startswith(VOLATILE_PREFIXES)


def sysctl_keys(sysctl_d):
    """Keys the sysctl.d files set by name (globs are left out: their live keys are not stable)."""
    keys = set()
    for entry in sysctl_d or []:
        text = entry[2]
        for raw in (text or "").splitlines():
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            key, sep, _value = line.partition("=")
            key = key.strip().lstrip("-")
            if not sep or not key or any(char in key for char in "*?["):
                continue
            if key.find("/") != -1 and (key.find(".") == -1 or key.find("/") < key.find(".")):
                key = key.translate(str.maketrans("./", "/."))
            keys.add(key)
    return keys


def _strip_counters(node):
    """An nftables JSON ruleset without the values that move with traffic."""
    if isinstance(node, dict):
        return {key: (None if key == "counter" else _strip_counters(value)) for key, value in node.items()
                if key not in ("handle", "packets", "bytes")}
    if isinstance(node, list):
        return [_strip_counters(item) for item in node]
    return node


def posture(facts):
    """``{section: {item: value}}``: what the PSSI rules read, reduced to what must not change alone.

    A section the gatherer could not produce is ``None``: ``compare`` reports it as an error.
    """
    errors = facts.get("errors") or {}

    def section(name):
        return None if name in errors else facts.get(name)

    result = {}  # type: dict
    sysctl, sysctl_d = section("sysctl"), section("sysctl_d")
    if sysctl is None or sysctl_d is None:
        result["sysctl"] = None
    else:
        result["sysctl"] = {key: sysctl.get(key) for key in sorted(sysctl_keys(sysctl_d))}
    result["sysctl_d"] = None if sysctl_d is None else {
        entry[0] + "/" + entry[1]: (digest(entry[2]) if entry[2] is not None else "masked") for entry in sysctl_d}
    files = section("files")
    result["files"] = None if files is None else {
        path: "{}:{}:{}:{}".format(info.get("type"), info.get("mode"), info.get("owner"), info.get("group"))
        if info.get("exists") else "absent" for path, info in files.items() if not _volatile(path)}
    texts = section("texts")
    result["texts"] = None if texts is None else {
        path: digest(text) for path, text in texts.items() if path != "__errors__" and not _volatile(path)}
    dirs = section("dirs")
    result["dirs"] = None if dirs is None else {
        path + "/" + name: "{}:{}:{}".format(info.get("mode"), info.get("owner"), info.get("group"))
        for path, listing in dirs.items() if not _volatile(path) for name, info in (listing or {}).items()}
    sshd = section("sshd")
    result["sshd"] = None if sshd is None else {
        key: " ".join(values) for key, values in (sshd.get("options") or {}).items()}
    units = section("units")
    result["units"] = None if units is None else {
        name: "{}/{}".format(info.get("ActiveState"), info.get("UnitFileState"))
        for name, info in (units.get("show") or {}).items()}
    mounts = section("mounts")
    if mounts is None:
        result["mounts"] = None
    else:
        persistent = {entry.get("target") for entry in mounts.get("fstab") or []}
        def described(entry):
            return "{} {}".format(entry.get("fstype"), entry.get("options"))

        items = {"live " + str(entry.get("target")): described(entry)
                 for entry in mounts.get("live") or [] if entry.get("target") in persistent}
        items.update({"fstab " + str(entry.get("target")): described(entry) for entry in mounts.get("fstab") or []})
        result["mounts"] = items
    nft = section("nft")
    result["nft"] = None if nft is None else {"ruleset": digest(_strip_counters(nft.get("ruleset")))}
    nft_file = section("nft_file")
    result["nft_file"] = None if nft_file is None else {"boot ruleset": digest(_strip_counters(nft_file))}
    audit = section("audit")
    result["audit"] = None if audit is None else {
        "enabled": (audit.get("status") or {}).get("enabled"), "rules": digest(audit.get("rules"))}
    apparmor = section("apparmor")
    result["apparmor"] = None if apparmor is None else dict(
        {"kernel": apparmor.get("kernel_enabled")},
        **{"profile " + name: str(mode) for name, mode in (apparmor.get("loaded") or {}).items()})
    accounts = section("accounts")
    if accounts is None:
        result["accounts"] = None
    else:
        items = {"user " + u["name"]: "{}:{}:{}".format(u["uid"], u["home"], u["shell"]) for u in accounts["users"]}
        items.update({"group " + g["name"]: ",".join(sorted(g["members"])) for g in accounts["groups"]})
        items.update({"password " + name: "{}:{}".format(s["scheme"], s["locked"])
                      for name, s in accounts["shadow"].items()})
        result["accounts"] = items
    packages = section("packages")
    # Installed or removed, not upgraded: an upgrade is reported by the rules it affects.
    result["packages"] = None if packages is None else {name: "installed" for name in packages}
    sockets = section("sockets")
    result["sockets"] = None if sockets is None else {
        "{} {}:{}".format(s["proto"], s["address"], s["port"]): "listening" for s in sockets}
    special = section("special_files")
    result["special_files"] = None if special is None else {
        path: "{}:{}:{}".format(info.get("mode"), info.get("owner"), info.get("group"))
        for path, info in (special.get("files") or {}).items()}
    system = section("system")
    result["modprobe"] = None if system is None else {
        module: "{} {}".format(info.get("rc"), info.get("output"))
        for module, info in (system.get("modprobe") or {}).items()}
    return result


def compare(reference, current):
    """(drifted items as ``section: item (was -> now)``, sections in error)."""
    drift, errors = [], []
    for name in POSTURE_SECTIONS:
        now = current.get(name)
        if now is None:
            errors.append(name)
            continue
        before = reference.get(name)
        if before is None:
            errors.append(name + " (no reference)")
            continue
        for item in sorted(set(before) | set(now)):
            if before.get(item) != now.get(item):
                was = before.get(item, "absent") if item in before else "absent"
                became = now.get(item) if item in now else "absent"
                drift.append(f"{name}: {item} ({was} -> {became})"[:MAX_ITEM_LENGTH])
    return drift, errors


def gather():
    proc = subprocess.run([sys.executable, GATHER], capture_output=True, check=False, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("fact gathering failed (exit {}): {}".format(
            proc.returncode, proc.stderr.decode("utf-8", "replace").strip()[-300:]))
    return json.loads(proc.stdout.decode("utf-8"))


def write_private(path, document):
    """Write JSON readable by root only, atomically (a crash never leaves half a reference)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(handle, "w") as stream:
        json.dump(document, stream, sort_keys=True)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def sign(payload, tls_dir):
    """(signature, certificate) in base64: ``openssl dgst -sha256 -sign`` with the host's PKI key."""
    proc = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(tls_dir, "host.key")],
                          input=payload, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("signing failed: " + proc.stderr.decode("utf-8", "replace").strip()[-300:])
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(tls_dir, "host.crt"), "-outform", "DER"],
                         capture_output=True, check=False)
    if der.returncode != 0:
        raise RuntimeError("cannot read the host certificate: " + der.stderr.decode("utf-8", "replace").strip()[-300:])
    return base64.b64encode(proc.stdout).decode("ascii"), base64.b64encode(der.stdout).decode("ascii")


def summary_line(summary, tls_dir):
    """The syslog message: format tag, payload, signature over the payload's bytes, certificate."""
    payload = json.dumps(summary, sort_keys=True, separators=(",", ":")).encode("utf-8")
    signature, certificate = sign(payload, tls_dir)
    return "{} payload={} sig={} cert={}".format(
        FORMAT, base64.b64encode(payload).decode("ascii"), signature, certificate)


def command_baseline(args):
    facts = gather()
    current = posture(facts)
    reference_path = os.path.join(args.state_dir, "baseline.json")
    previous = None
    if os.path.exists(reference_path):
        with open(reference_path) as stream:
            previous = json.load(stream)
    if previous is not None and previous.get("posture") == current and previous.get("catalog") == args.catalog:
        print("unchanged")
        return 0
    write_private(reference_path, {"time": now_utc(), "catalog": args.catalog, "posture": current})
    print("recorded")
    return 0


def command_run(args):
    started = now_utc()
    summary = {"host": socket.gethostname(), "time": started, "catalog": args.catalog}
    try:
        with open(os.path.join(args.state_dir, "baseline.json")) as stream:
            reference = json.load(stream)
        facts = gather()
        drift, errors = compare(reference.get("posture") or {}, posture(facts))
        summary.update({"baseline": reference.get("time"), "gather_seconds": facts.get("gather_seconds"),
                        "status": "error" if errors else "drift" if drift else "ok", "errors": errors,
                        "drift_count": len(drift), "drift": drift[:MAX_DRIFT_ITEMS]})
    except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
        summary.update({"status": "error", "errors": [f"{type(exc).__name__}: {exc}"[:300]],
                        "drift_count": 0, "drift": []})
    line = summary_line(summary, args.tls_dir)
    subprocess.run([*SHIP, line], check=True)
    write_private(os.path.join(args.state_dir, "last-summary.json"), dict(summary, line=line))
    print("{} {}: {} ({} drifted, errors: {})".format(
        summary["host"], summary["time"], summary["status"], summary["drift_count"],
        ", ".join(summary["errors"]) or "none"))
    return 1 if summary["status"] == "error" else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ght-reverify", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=STATE_DIR)
    parser.add_argument("--tls-dir", default=TLS_DIR)
    parser.add_argument("--catalog", default=os.environ.get("GHT_PSSI_CATALOG_VERSION", "unknown"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("baseline", help="record the posture of this host as the reference")
    sub.add_parser("run", help="compare with the reference and ship a signed summary to the log zone")
    args = parser.parse_args(argv)
    os.umask(0o077)
    return command_baseline(args) if args.command == "baseline" else command_run(args)


if __name__ == "__main__":
    sys.exit(main())
