#!/usr/bin/python3
"""Lock-out guard (PSSI ADM-003): would a candidate sshd configuration still let this user in?

Usage: sshd_preflight.py CANDIDATE USER ADDRESS GROUP...
Prints one JSON object {"ok": bool, "reasons": [...]} and exits 0; the role turns a refusal into
a clear failure before the live configuration is touched.
"""

import json
import os
import pwd
import subprocess
import sys


def main() -> None:
    candidate, user, address, *groups = sys.argv[1:]
    reasons = []
    test = subprocess.run(["/usr/sbin/sshd", "-t", "-f", candidate], capture_output=True, text=True)
    if test.returncode != 0:
        reasons.append("sshd -t rejects the candidate: " + (test.stderr.strip() or test.stdout.strip()))
        print(json.dumps({"ok": False, "reasons": reasons}))
        return
    spec = f"user={user},host={address},addr={address}"
    dump = subprocess.run(["/usr/sbin/sshd", "-T", "-f", candidate, "-C", spec], capture_output=True, text=True)
    if dump.returncode != 0:
        reasons.append("sshd -T cannot evaluate the candidate: " + dump.stderr.strip())
        print(json.dumps({"ok": False, "reasons": reasons}))
        return
    settings = {}
    for line in dump.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)

    allow_users = " ".join(settings.get("allowusers", [])).split()
    allow_groups = " ".join(settings.get("allowgroups", [])).split()
    deny_users = " ".join(settings.get("denyusers", [])).split()
    deny_groups = " ".join(settings.get("denygroups", [])).split()
    if allow_users and user not in allow_users:
        reasons.append(f"AllowUsers ({' '.join(allow_users)}) does not list {user}")
    if allow_groups and not set(groups) & set(allow_groups):
        reasons.append(f"AllowGroups ({' '.join(allow_groups)}) contains none of {user}'s groups ({' '.join(groups)})")
    if user in deny_users or set(groups) & set(deny_groups):
        reasons.append(f"DenyUsers/DenyGroups exclude {user}")
    if settings.get("pubkeyauthentication", ["yes"])[0] != "yes":
        reasons.append("PubkeyAuthentication is off and the administrator logs in with a key")
    if user == "root" and settings.get("permitrootlogin", ["no"])[0] == "no":
        reasons.append("the connection uses root and PermitRootLogin is no")

    home = pwd.getpwnam(user).pw_dir
    key_files = []
    for token in " ".join(settings.get("authorizedkeysfile", [".ssh/authorized_keys"])).split():
        path = token.replace("%h", home).replace("%u", user).replace("%%", "%")
        key_files.append(path if path.startswith("/") else os.path.join(home, path))
    command = settings.get("authorizedkeyscommand", ["none"])[0]
    if command == "none" and not any(os.path.isfile(p) and os.path.getsize(p) > 0 for p in key_files):
        reasons.append(f"{user} has no authorized key in {', '.join(key_files)}")
    print(json.dumps({"ok": not reasons, "reasons": reasons, "allowgroups": allow_groups}))


if __name__ == "__main__":
    main()
