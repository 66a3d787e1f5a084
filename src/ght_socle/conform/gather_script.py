"""Fact gatherer run ON the audited host, as root, in one SSH round trip (``sudo -n python3 -``).

Standard library only, Python >= 3.9 (Debian 11+ guests). It prints one JSON document holding
everything the conformance rules assert on; each section records its own failure under
``errors`` so a broken command turns the rules needing it into ``error``, never into a pass.
Commands run concurrently in threads: under emulation each process start costs tens of ms.

The controller prepends ``REQUEST = {...}`` (paths to stat, files to read, units to query) before
sending this file. Password hashes never leave the host: only their scheme prefix is reported.
"""

import concurrent.futures
import glob
import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time

REQUEST = globals().get("REQUEST") or {"stat": [], "read": [], "units": [], "list_dirs": []}
MAX_READ = 262144
ENV = dict(os.environ, LC_ALL="C", LANG="C", PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def run(argv, timeout=240):
    """(rc, stdout, stderr); rc None when the command does not exist on the host."""
    if shutil.which(argv[0], path=ENV["PATH"]) is None:
        return None, "", "command not found: " + argv[0]
    proc = subprocess.run(argv, capture_output=True, env=ENV, timeout=timeout, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def command(argv, ok=(0,)):
    """Run a command whose output is the fact; a missing tool is a fact too (``installed: false``)."""
    rc, out, err = run(argv)
    if rc is None:
        return {"installed": False}
    if rc not in ok:
        raise RuntimeError("{} exited {}: {}".format(" ".join(argv), rc, err.strip()[-300:]))
    return {"installed": True, "rc": rc, "stdout": out}


def stat_path(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as exc:
        return {"exists": None, "error": str(exc)}
    kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
            else "link" if stat.S_ISLNK(st.st_mode) else "other")
    info = {"exists": True, "type": kind, "mode": format(stat.S_IMODE(st.st_mode), "04o"), "uid": st.st_uid,
            "gid": st.st_gid, "size": st.st_size, "mtime": int(st.st_mtime)}
    try:
        info["owner"] = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        info["owner"] = None
    try:
        info["group"] = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        info["group"] = None
    if kind == "link":
        info["target"] = os.readlink(path)
    return info


def read_file(path):
    with open(path, "rb") as handle:
        data = handle.read(MAX_READ)
    return data.decode("utf-8", "replace")


def section_files():
    paths = set()
    for pattern in REQUEST.get("stat", []):
        matches = glob.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
        paths.update(matches)
    return {path: stat_path(path) for path in sorted(paths)}


def section_texts():
    texts = {}
    for pattern in REQUEST.get("read", []):
        matches = glob.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
        for path in matches:
            if os.path.isfile(path):
                try:
                    texts[path] = read_file(path)
                except OSError as exc:
                    texts[path] = None
                    texts.setdefault("__errors__", {})[path] = str(exc)
    return texts


def section_dirs():
    listing = {}  # type: dict
    for path in REQUEST.get("list_dirs", []):
        if os.path.isdir(path):
            listing[path] = {name: stat_path(os.path.join(path, name)) for name in sorted(os.listdir(path))}
        else:
            listing[path] = None
    return listing


def section_sshd():
    result = command(["sshd", "-T"])
    if not result["installed"]:
        return {"installed": False}
    options = {}  # type: dict
    for line in result["stdout"].splitlines():
        key, _, value = line.partition(" ")
        if key:
            options.setdefault(key.lower(), []).append(value.strip())
    return {"installed": True, "options": options}


SSHD_PROBE_USER = "conform-probe"
# The server's KEXINIT lines of `ssh -vv` that name what the running daemon offers, by sshd -T's key.
SSHD_KEXINIT = {"KEX algorithms": "kexalgorithms", "host key algorithms": "hostkeyalgorithms",
                "ciphers ctos": "ciphers", "MACs ctos": "macs"}


def sshd_listener():
    """(address, port) of a socket the sshd process listens on, loopback first; None when none does."""
    found = [entry for entry in listening_sockets().values()
             if entry["proto"] == "tcp" and '"sshd"' in entry["process"]]
    if not found:
        return None
    found.sort(key=lambda entry: (not entry["address"].startswith("127."), entry["address"]))
    address = found[0]["address"]
    wildcard = {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    return wildcard.get(address, address), found[0]["port"]


def parse_ssh_probe(debug_output):
    """``({sshd -T key: [algorithms]}, [auth methods] or None)`` from the client's ``ssh -vv`` output:
    the server's KEXINIT proposal (the strict-kex and ext-info markers are no algorithms) and its
    answer to the ``none`` authentication."""
    offered, methods, in_server_proposal = {}, None, False
    for line in debug_output.splitlines():
        text = line.split(": ", 1)[1] if line.startswith("debug") and ": " in line else line
        if text.startswith("peer server KEXINIT proposal"):
            in_server_proposal = True
        elif text.endswith("KEXINIT proposal"):
            in_server_proposal = False
        elif in_server_proposal and text.partition(": ")[0] in SSHD_KEXINIT:
            name, _, value = text.partition(": ")
            offered[SSHD_KEXINIT[name]] = [algorithm for algorithm in value.split(",") if algorithm
                                          and not algorithm.startswith(("ext-info-", "kex-strict-"))]
        elif text.startswith("Authentications that can continue: "):
            methods = text.split(": ", 1)[1].split(",")
    return offered, methods


def section_sshd_live():
    """What the running sshd offers, asked over its own socket as a client would.

    ``sshd -T`` prints the configuration the files on disk give the next start of sshd; the daemon
    running now may have loaded another one (a file changed and not reloaded, or reloaded and changed
    back). The client's ``none`` authentication asks for nothing secret: the server answers with its
    key exchange proposal and the authentication methods it accepts (sshd logs a failed attempt of
    the user SSHD_PROBE_USER from the loopback).
    """
    listener = sshd_listener()
    if listener is None:
        return {"listening": False}
    address, port = listener
    rc, _, err = run(["ssh", "-vv", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
                        "-o", "PreferredAuthentications=none", "-o", "ConnectTimeout=60", "-p", port,
                        "-l", SSHD_PROBE_USER, address, "true"], timeout=120)
    if rc is None:
        raise RuntimeError("the OpenSSH client is not installed: the running sshd cannot be asked")
    offered, methods = parse_ssh_probe(err)
    if not offered.get("ciphers"):
        raise RuntimeError(f"ssh to the running sshd on {address}:{port} printed no KEXINIT proposal: "
                           + err.strip()[-300:])
    return {"listening": True, "address": address, "port": port, "offered": offered, "auth_methods": methods}


def section_sysctl():
    rc, out, err = run(["sysctl", "-a"])
    if rc is None:
        raise RuntimeError("sysctl not found")
    values = {}
    for line in out.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    if not values:
        raise RuntimeError("sysctl -a printed nothing: " + err.strip()[-200:])
    return values


# systemd-sysctl's directories, highest priority first: a file name found in an earlier directory hides
# the same name in the later ones (``/etc`` overrides ``/usr/lib``; a link to /dev/null masks).
SYSCTL_DIRS = ["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"]


def section_sysctl_d():
    """Every ``*.conf`` of the sysctl.d directories, as read at boot: ``[[dir, name, text or None]]``.

    None marks a masked name (a link to /dev/null). A directory that is the same as an earlier one
    (``/lib`` is ``/usr/lib`` on a merged-/usr system) is read once.
    """
    seen, files = set(), []
    for directory in SYSCTL_DIRS:
        real = os.path.realpath(directory)
        if real in seen or not os.path.isdir(directory):
            continue
        seen.add(real)
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not name.endswith(".conf"):
                continue
            masked = os.path.realpath(path) == "/dev/null"
            files.append([directory, name, None if masked else read_file(path)])
    return files


def section_mounts():
    live = json.loads(command(["findmnt", "-J", "-l", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"])["stdout"])
    fstab_result = run(["findmnt", "-J", "-l", "-s", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"])
    fstab = json.loads(fstab_result[1])["filesystems"] if fstab_result[0] == 0 and fstab_result[1].strip() else []
    return {"live": live["filesystems"], "fstab": fstab}


def section_nft():
    result = command(["nft", "-j", "list", "ruleset"])
    if not result["installed"]:
        return {"installed": False}
    return {"installed": True, "ruleset": json.loads(result["stdout"] or '{"nftables": []}')["nftables"]}


NFT_BOOT_FILE = "/etc/nftables.conf"


def section_nft_file():
    """The ruleset nftables.service loads at boot, as the kernel would hold it.

    The file is loaded into a scratch network namespace (``unshare --net``, gone when the command
    ends), never into the host's: what the host enforces now is the ``nft`` section.
    """
    if not os.path.exists(NFT_BOOT_FILE):
        return {"exists": False}
    rc, out, err = run(["unshare", "--net", "sh", "-c", f"nft -f {NFT_BOOT_FILE} && nft -j list ruleset"])
    if rc is None:
        raise RuntimeError("unshare not found")
    if rc != 0:
        return {"exists": True, "loads": False, "error": err.strip()[-300:]}
    return {"exists": True, "loads": True, "ruleset": json.loads(out or '{"nftables": []}')["nftables"]}


def section_packages():
    out = command(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"])["stdout"]
    packages = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].startswith("ii"):
            packages[parts[0]] = parts[1]
    return packages


def listening_sockets():
    out = command(["ss", "-Hlntup"])["stdout"]
    sockets = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        netid, state, local = fields[0], fields[1], fields[4]
        if netid == "tcp" and state != "LISTEN":
            continue
        if netid == "udp" and state not in ("UNCONN", "LISTEN"):
            continue
        address, _, port = local.rpartition(":")
        address = address.strip("[]").split("%")[0]
        process = " ".join(fields[6:]) if len(fields) > 6 else ""
        sockets[(netid, address, port)] = {"proto": netid, "address": address, "port": port, "process": process}
    return sockets


SOCKET_SNAPSHOT_GAP = 1.5


def section_sockets():
    """Sockets listening in two snapshots taken apart: a service listens for good.

    A short-lived client (a resolver query, a backup run) briefly holds an unconnected UDP socket
    on an ephemeral port, often gone with its process before ``ss -p`` can name it; one snapshot
    would report it as an undeclared service at random. The gap costs no wall time: the other
    sections run meanwhile.
    """
    first = listening_sockets()
    time.sleep(SOCKET_SNAPSHOT_GAP)
    second = listening_sockets()
    sockets = []
    for key in sorted(set(first) & set(second)):
        entry = dict(second[key])
        entry["process"] = entry["process"] or first[key]["process"]
        sockets.append(entry)
    return sockets


def section_units():
    units = REQUEST.get("units", [])
    props = "Id,LoadState,ActiveState,SubState,UnitFileState"
    out = command(["systemctl", "show", "--no-pager", "-p", props, *units])["stdout"]
    states = {}
    for block in out.strip().split("\n\n"):
        entry = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if entry.get("Id"):
            states[entry["Id"]] = entry
    # Ask by the requested names too: systemctl reports aliases under the canonical Id.
    for name in units:
        if name not in states:
            for entry in states.values():
                if entry.get("Id") == name or entry.get("Id") == name + ".service":
                    states[name] = entry
    # One D-Bus query for the listed units only: listing every unit file is slow on a busy host.
    return {"show": states}


def section_accounts():
    users = [{"name": p.pw_name, "uid": p.pw_uid, "gid": p.pw_gid, "home": p.pw_dir, "shell": p.pw_shell}
             for p in pwd.getpwall()]
    groups = [{"name": g.gr_name, "gid": g.gr_gid, "members": list(g.gr_mem)} for g in grp.getgrall()]
    shadow = {}
    with open("/etc/shadow") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if len(fields) < 2:
                continue
            hashed = fields[1]
            if hashed.startswith("$"):
                scheme = "$" + hashed.split("$")[1] + "$"
            elif hashed in ("", "!", "*", "!*", "!!"):
                scheme = hashed or "empty"
            else:
                scheme = "locked" if hashed.startswith("!") else "other"
            shadow[fields[0]] = {"scheme": scheme, "locked": hashed.startswith("!") or hashed == "*",
                                 "max_days": fields[4] if len(fields) > 4 else ""}
    return {"users": users, "groups": groups, "shadow": shadow}


def section_audit():
    status = command(["auditctl", "-s"])
    if not status["installed"]:
        return {"installed": False}
    rules = command(["auditctl", "-l"])
    values = {}
    for line in status["stdout"].splitlines():
        key, _, value = line.partition(" ")
        values[key] = value.strip()
    return {"installed": True, "status": values, "rules": rules["stdout"].splitlines()}


APPARMOR_KERNEL_PROFILES = "/sys/kernel/security/apparmor/profiles"


def kernel_apparmor_profiles():
    """``{name: mode}`` of the profiles the kernel has loaded now (None without AppArmor's securityfs)."""
    if not os.path.exists(APPARMOR_KERNEL_PROFILES):
        return None
    loaded = {}
    for line in read_file(APPARMOR_KERNEL_PROFILES).splitlines():
        name, _, mode = line.rpartition(" (")
        if name:
            loaded[name] = mode.rstrip(")")
    return loaded


def section_apparmor():
    enabled_path = "/sys/module/apparmor/parameters/enabled"
    enabled = read_file(enabled_path).strip() if os.path.exists(enabled_path) else "absent"
    result = command(["aa-status", "--json"], ok=(0, 1, 2, 3, 4))
    # What the kernel enforces, whatever the tools say: aa-teardown empties this list while
    # apparmor.service stays active.
    loaded = kernel_apparmor_profiles()
    profiles = loaded
    if result["installed"] and result["stdout"].strip().startswith("{"):
        profiles = json.loads(result["stdout"]).get("profiles", {})
    force_complain = "/etc/apparmor.d/force-complain"
    return {"kernel_enabled": enabled, "aa_status": result["installed"], "profiles": profiles, "loaded": loaded,
            "force_complain": sorted(os.listdir(force_complain)) if os.path.isdir(force_complain) else []}


def section_chrony():
    result = command(["chronyc", "-n", "-c", "sources"], ok=(0, 1))
    if not result["installed"]:
        return {"installed": False}
    sources = []
    for line in result["stdout"].splitlines():
        fields = line.split(",")
        if len(fields) >= 3:
            sources.append({"mode": fields[0], "state": fields[1], "address": fields[2]})
    return {"installed": True, "reachable": result["rc"] == 0, "sources": sources}


def section_special_files():
    """setuid/setgid files, world-writable dirs without sticky bit, unowned files: one find per filesystem."""
    skip_types = {"proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "cgroup2", "cgroup", "securityfs", "debugfs",
                  "tracefs", "pstore", "bpf", "mqueue", "hugetlbfs", "configfs", "fusectl", "autofs",
                  "efivarfs", "binfmt_misc", "nsfs", "ramfs", "squashfs", "overlay", "nfs", "nfs4", "cifs"}
    roots = []
    with open("/proc/self/mounts") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 3 and fields[2] not in skip_types and fields[1] not in roots:
                roots.append(fields[1].replace("\\040", " "))
    # find's -nouser/-nogroup resolve every file's owner through NSS (about 6x the cost of the whole
    # walk under emulation): compare with the numeric ids of the account databases instead.
    unknown_uid = ["("] + [arg for uid in sorted({p.pw_uid for p in pwd.getpwall()}) for arg in ("!", "-uid", str(uid))]
    unknown_gid = ["("] + [arg for gid in sorted({g.gr_gid for g in grp.getgrall()}) for arg in ("!", "-gid", str(gid))]
    out = command(["find", *roots, "-xdev", "(", "-perm", "-4000", "-o", "-perm", "-2000", "-o",
                   "(", "-type", "d", "-perm", "-0002", "!", "-perm", "-1000", ")", "-o", *unknown_uid, ")", "-o",
                   *unknown_gid, ")", ")", "-printf", "%m\t%U\t%G\t%u\t%g\t%y\t%p\n"], ok=(0, 1))["stdout"]
    found = {}
    for line in out.splitlines():
        fields = line.split("\t", 6)
        if len(fields) == 7:
            found[fields[6]] = {"mode": fields[0].zfill(4), "uid": fields[1], "gid": fields[2],
                                "owner": fields[3], "group": fields[4], "type": fields[5]}
    return {"roots": roots, "files": found}


def section_log_files():
    out = command(["find", "/var/log", "-xdev", "-type", "f", "-printf", "%m\t%p\n"], ok=(0, 1))["stdout"]
    return {line.split("\t", 1)[1]: line.split("\t", 1)[0].zfill(4) for line in out.splitlines() if "\t" in line}


def section_block_devices():
    result = command(["lsblk", "-J", "-p", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT"])
    return json.loads(result["stdout"]).get("blockdevices", [])


def section_system():
    info = {"hostname": socket.gethostname(), "kernel": os.uname().release, "python": sys.version.split()[0],
            "time": int(time.time()), "cmdline": read_file("/proc/cmdline").strip(),
            "modules": None}
    if os.path.exists("/proc/modules"):  # absent on a kernel without loadable modules
        info["modules"] = sorted(line.split()[0] for line in read_file("/proc/modules").splitlines() if line)
    info["os_release"] = dict(
        (line.split("=", 1)[0], line.split("=", 1)[1].strip('"'))
        for line in read_file("/etc/os-release").splitlines() if "=" in line
    )
    if os.path.exists("/etc/debian_version"):
        info["debian_version"] = read_file("/etc/debian_version").strip()
    blocked = {}
    for module in REQUEST.get("modprobe", []):
        rc, out, err = run(["modprobe", "-n", "-v", module])
        blocked[module] = {"rc": rc, "output": out.strip(), "error": err.strip()[-300:]}
    info["modprobe"] = blocked
    return info


def section_hashes():
    digests = {}
    for path in REQUEST.get("sha256", []):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                digests[path] = hashlib.sha256(handle.read()).hexdigest()
    return digests


SECTIONS = {
    "files": section_files, "texts": section_texts, "dirs": section_dirs, "sshd": section_sshd,
    "sshd_live": section_sshd_live,
    "sysctl": section_sysctl, "sysctl_d": section_sysctl_d, "mounts": section_mounts, "nft": section_nft,
    "nft_file": section_nft_file, "packages": section_packages,
    "sockets": section_sockets, "units": section_units, "accounts": section_accounts, "audit": section_audit,
    "apparmor": section_apparmor, "chrony": section_chrony, "special_files": section_special_files,
    "log_files": section_log_files, "block_devices": section_block_devices, "system": section_system,
    "hashes": section_hashes,
}


def main():
    started = time.time()
    errors = {}  # type: dict
    facts = {"format": 1, "errors": errors, "request": REQUEST}
    # find over the whole filesystem is the slowest part: start it first.
    order = ["special_files"] + [name for name in SECTIONS if name != "special_files"]
    timings = {}  # type: dict

    def timed(name):
        section_started = time.time()
        try:
            return SECTIONS[name]()
        finally:
            timings[name] = round(time.time() - section_started, 3)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = {name: pool.submit(timed, name) for name in order}
        for name, future in futures.items():
            try:
                facts[name] = future.result()
            except Exception as exc:  # each section fails alone; the rules needing it report an error
                facts[name] = None
                errors[name] = f"{type(exc).__name__}: {exc}"
    facts["gather_seconds"] = round(time.time() - started, 3)
    facts["section_seconds"] = timings
    sys.stdout.write(json.dumps(facts, sort_keys=True))


if __name__ == "__main__":
    main()
