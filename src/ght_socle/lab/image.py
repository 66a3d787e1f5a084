"""The lab's golden image: Debian 12 built from Debian's own packages, cached by recipe hash.

No image is downloaded: ``debootstrap`` fetches ``.deb`` files from Debian's registry, ``apt-get``
adds every package the hardening roles will need (so a converge never downloads), and
``mkfs.ext4 -d`` turns each subtree into its own filesystem image without a loop mount. The
partition layout is the one the PSSI asks for (ANSSI-BP-028 v2.0 R28: separate ``/tmp``,
``/var``, ``/var/tmp``, ``/var/log``, ``/var/log/audit``, ``/home``), each filesystem a separate
virtio disk mounted by label with *default* options: the image is deliberately not hardened, so a
fresh VM fails the mount-option rules until the roles fix them.

The cache key is the SHA-256 of the recipe (suite, mirror, packages, layout, build version): the
image is rebuilt only when one of these changes. A build happens in a temporary directory next
to the cache entry and is renamed into place, so a crashed build never leaves a half image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ght_socle import paths
from ght_socle.errors import SocleError
from ght_socle.lab.tools import require_tools, run

# Bump when the build steps below change in a way that changes the image.
BUILD_SCRIPT_VERSION = 8
SUITE = "bookworm"
DEFAULT_LOCALE = "en_US.UTF-8"  # cloud-init's default (cc_locale)
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# What a bootable cloud VM needs, then what the roles install (present at build time so that a
# converge under TCG never waits on downloads). Installed with --no-install-recommends.
BOOT_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus", "kmod", "procps",
    "openssh-server", "openssh-sftp-server", "python3", "python3-apt", "sudo", "cloud-init",
    # net-tools: cloud-init's ifupdown renderer writes static routes as `route add`.
    "iproute2", "ifupdown", "isc-dhcp-client", "net-tools",
    # locales: cloud-init's locale module runs update-locale (and locale-gen when the locale differs).
    "locales", "iputils-ping", "netcat-openbsd", "less",
)
ROLE_PACKAGES = (
    "auditd", "audispd-plugins", "chrony", "rsyslog", "rsyslog-gnutls", "gnutls-bin", "nftables",
    "aide", "aide-common", "apparmor", "apparmor-utils", "apparmor-profiles", "unattended-upgrades",
    "restic", "libpam-pwquality", "libpam-modules", "lynis", "dconf-cli", "acl", "cron", "logrotate",
    "openssl", "ca-certificates",
)


# Default mount options (no nodev/nosuid/noexec: hardening adds them). The device timeout only says
# how long systemd waits for a labelled disk: several TCG guests booting on two cores can need far
# more than the 90 s default before udev has seen every disk. No boot-time fsck (pass 0): the
# filesystems are fresh copy-on-write overlays, and seven e2fsck runs cost each TCG boot dearly.
FSTAB_OPTIONS = "defaults,x-systemd.device-timeout=15min"


@dataclass(frozen=True)
class Filesystem:
    """One filesystem of the layout: its mount point, label (LABEL= in fstab) and size."""

    mountpoint: str
    label: str
    size_mb: int
    mode: int = 0o755


# Order = virtio disk order (vda is the root filesystem). Sizes are sparse: unused space costs nothing.
LAYOUT: tuple[Filesystem, ...] = (
    Filesystem("/", "root", 3072),
    Filesystem("/tmp", "tmp", 1024, 0o1777),
    Filesystem("/var", "var", 3072),
    Filesystem("/var/tmp", "vartmp", 1024, 0o1777),
    Filesystem("/var/log", "varlog", 1024),
    Filesystem("/var/log/audit", "varlogaudit", 512, 0o750),
    Filesystem("/home", "home", 1024),
)


@dataclass(frozen=True)
class Recipe:
    suite: str = SUITE
    mirror: str = MIRROR
    packages: tuple[str, ...] = BOOT_PACKAGES + ROLE_PACKAGES
    layout: tuple[Filesystem, ...] = LAYOUT
    build_version: int = BUILD_SCRIPT_VERSION

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class GoldenImage:
    """A built image in the cache: one raw disk per filesystem, plus the kernel and initrd."""

    directory: Path
    recipe: Recipe

    def disk(self, fs: Filesystem) -> Path:
        return self.directory / f"{fs.label}.raw"

    @property
    def disks(self) -> list[Path]:
        return [self.disk(fs) for fs in self.recipe.layout]

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    def is_complete(self) -> bool:
        return (self.directory / "recipe.json").is_file() and self.kernel.is_file() and self.initrd.is_file() \
            and all(d.is_file() for d in self.disks)


def images_dir(cache: Path | None = None) -> Path:
    return (cache or paths.cache_dir()) / "images"


def cached_image(recipe: Recipe | None = None, cache: Path | None = None) -> GoldenImage:
    recipe = recipe or Recipe()
    return GoldenImage(images_dir(cache) / recipe.digest(), recipe)


def ensure_image(recipe: Recipe | None = None, cache: Path | None = None,
                 progress: Callable[[str], None] = lambda _msg: None) -> GoldenImage:
    """Return the cached image for ``recipe``, building it first when the cache has none."""
    image = cached_image(recipe, cache)
    if image.is_complete():
        return image
    require_tools("debootstrap", "mkfs.ext4", "chroot")
    if os.geteuid() != 0:
        raise SocleError("building the golden image needs root (debootstrap, chroot): run as root", where="lab")
    parent = image.directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
    try:
        _build(image.recipe, build_dir, progress)
        if image.directory.exists():  # a concurrent build finished first: keep it
            _remove_build_tree(build_dir)
        else:
            build_dir.chmod(0o755)
            build_dir.rename(image.directory)
    except BaseException:
        _remove_build_tree(build_dir)
        raise
    progress(f"golden image built in {time.monotonic() - started:.0f} s: {image.directory}")
    return image


def _build(recipe: Recipe, build_dir: Path, progress: Callable[[str], None]) -> None:
    rootfs = build_dir / "rootfs"
    progress(f"golden image: debootstrap {recipe.suite} from {recipe.mirror} (about 1 minute)")
    # The registry occasionally drops a download mid-run: retry from scratch a couple of times.
    for attempt in (1, 2, 3):
        try:
            run(["debootstrap", "--variant=minbase", recipe.suite, rootfs, recipe.mirror], what="debootstrap",
                timeout=1800)
            break
        except SocleError:
            _remove_build_tree(rootfs)
            if attempt == 3:
                raise
            progress(f"golden image: debootstrap failed (attempt {attempt}), retrying")
    _write_apt_sources(rootfs, recipe)
    _write_initramfs_modules(rootfs)
    progress(f"golden image: installing {len(recipe.packages)} packages (kernel, cloud-init, role packages)")
    with _chroot_mounts(rootfs):
        env = "DEBIAN_FRONTEND=noninteractive"
        _chroot(rootfs, f"{env} apt-get update -qq", "apt-get update in the image")
        _chroot(rootfs, f"{env} apt-get install -y -qq --no-install-recommends "
                f"-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {' '.join(recipe.packages)}",
                "apt-get install in the image")
        _chroot(rootfs, "apt-get clean", "apt-get clean in the image")
        # cloud-init's default locale, generated once here instead of at every first boot (locale-gen
        # costs tens of seconds under TCG); cloud-init then finds it already set and does nothing.
        (rootfs / "etc/locale.gen").write_text(f"{DEFAULT_LOCALE} UTF-8\n")
        _chroot(rootfs, "locale-gen >/dev/null", "locale-gen in the image")
        (rootfs / "etc/default/locale").write_text(f"LANG={DEFAULT_LOCALE}\n")
    _make_first_boot_ready(rootfs, recipe)
    _install_bake_unit(rootfs)
    _extract_kernel(rootfs, build_dir)
    progress("golden image: building one ext4 filesystem per mount point (mkfs.ext4 -d)")
    _build_filesystems(rootfs, build_dir, recipe.layout)
    _remove_build_tree(rootfs)
    progress("golden image: build-time boot (AppArmor policy cache, hwdb, ldconfig; a few minutes under TCG)")
    _bake(build_dir, recipe.layout)
    (build_dir / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2, sort_keys=True) + "\n")


def _write_apt_sources(rootfs: Path, recipe: Recipe) -> None:
    (rootfs / "etc/apt/sources.list").write_text("")
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {recipe.mirror}\nSuites: {recipe.suite} {recipe.suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {SECURITY_MIRROR}\nSuites: {recipe.suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    # No service may start inside the build chroot.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def _write_initramfs_modules(rootfs: Path) -> None:
    """A small initramfs with just the virtio and ext4 drivers: unpacking and probing the default
    "most modules" one costs about 15 s per boot under TCG. Written before the kernel is installed."""
    conf = rootfs / "etc/initramfs-tools"
    (conf / "conf.d").mkdir(parents=True, exist_ok=True)
    (conf / "conf.d/ght-lab-modules.conf").write_text("MODULES=list\n")
    (conf / "modules").write_text("virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n")


# Only kernel pseudo-filesystems are mounted in the build chroot: debootstrap already created the
# device nodes the package scripts need in <rootfs>/dev. The host's /dev is never bind-mounted, so
# no cleanup of the build tree can ever reach a host device node.
_CHROOT_MOUNTS = (("proc", "proc", ["-t", "proc"]), ("sysfs", "sys", ["-t", "sysfs"]))


@contextmanager
def _chroot_mounts(rootfs: Path) -> Iterator[None]:
    try:
        for source, target, options in _CHROOT_MOUNTS:
            run(["mount", *options, source, rootfs / target], what=f"mount {target} in the build chroot")
        yield
    finally:
        _unmount_chroot(rootfs)


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [point for point in points if point.startswith(prefix) or point == prefix.rstrip("/")]


def _unmount_chroot(rootfs: Path) -> None:
    if not rootfs.exists():
        return
    for point in sorted(_mounts_under(rootfs), key=len, reverse=True):
        subprocess.run(["umount", point], check=False, capture_output=True)


def _remove_build_tree(directory: Path) -> None:
    """Delete a build tree, refusing if anything is still mounted below it."""
    _unmount_chroot(directory)
    remaining = _mounts_under(directory)
    if remaining:
        raise SocleError(f"refusing to delete {directory}: still mounted: {', '.join(remaining)}", where="lab")
    shutil.rmtree(directory, ignore_errors=True)


def _chroot(rootfs: Path, shell: str, what: str) -> None:
    run(["chroot", rootfs, "/bin/sh", "-c", shell], what=what, timeout=1800)


def _make_first_boot_ready(rootfs: Path, recipe: Recipe) -> None:
    """Bootable and generic, nothing hardened: every instance gets its identity at first boot."""
    (rootfs / "usr/sbin/policy-rc.d").unlink()
    fstab = ["# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>"]
    for fs in recipe.layout:
        fstab.append(f"LABEL={fs.label}\t{fs.mountpoint}\text4\t{FSTAB_OPTIONS}\t0\t0")
    (rootfs / "etc/fstab").write_text("\n".join(fstab) + "\n")
    # Host keys and machine id are per instance: cloud-init and systemd regenerate them at first boot.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    (rootfs / "etc/hostname").write_text("localhost\n")
    # Only the NoCloud seed exists in the lab: skip probing cloud metadata services at boot.
    (rootfs / "etc/cloud/cloud.cfg.d/90_ght_lab_datasource.cfg").write_text("datasource_list: [NoCloud, None]\n")
    interfaces = rootfs / "etc/network/interfaces"
    if "interfaces.d" not in (interfaces.read_text() if interfaces.exists() else ""):
        interfaces.write_text("source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")


# The build-time boot: systemd does its one-off work once (compiling the AppArmor policy cache alone
# takes about 80 s per boot under TCG), then the unit forgets that boot and powers off. It runs only
# with `ght_lab_bake` on the kernel command line and deletes itself, so instances never see it.
# cloud-init is disabled on that boot, so no instance state is left behind.
_BAKE_SCRIPT = """#!/bin/sh
systemctl is-system-running --wait >/dev/null 2>&1
echo "ght-lab-bake: boot finished: $(systemctl is-system-running)" >/dev/console
# Stop the log writers, so that the cleanup below is the last write to /var/log.
systemctl stop rsyslog.service syslog.socket >/dev/null 2>&1
pkill -TERM -x auditd; sleep 1
journalctl --relinquish-var >/dev/null 2>&1
rm -rf /var/log/journal/* /var/lib/systemd/random-seed /var/lib/systemd/credential.secret \\
       /var/lib/systemd/timers/* /var/lib/chrony/* /var/lib/dhcp/* /var/lib/cloud/*
for log in /var/log/syslog /var/log/auth.log /var/log/kern.log /var/log/messages /var/log/user.log \\
           /var/log/daemon.log /var/log/debug /var/log/audit/audit.log /var/log/wtmp /var/log/btmp \\
           /var/log/lastlog; do
  [ -f "$log" ] && : > "$log"
done
rm -f /etc/ssh/ssh_host_* /var/lib/dbus/machine-id
: > /etc/machine-id
rm -f /etc/systemd/system/ght-lab-bake.service /etc/systemd/system/multi-user.target.wants/ght-lab-bake.service \\
      /usr/local/sbin/ght-lab-bake
sync
echo "ght-lab-bake: done" >/dev/console
systemctl poweroff
"""

_BAKE_UNIT = """[Unit]
Description=Build-time boot of the ght-socle lab golden image
ConditionKernelCommandLine=ght_lab_bake

[Service]
Type=simple
ExecStart=/usr/local/sbin/ght-lab-bake

[Install]
WantedBy=multi-user.target
"""
BAKE_TIMEOUT_SECONDS = 1200


def _install_bake_unit(rootfs: Path) -> None:
    script = rootfs / "usr/local/sbin/ght-lab-bake"
    script.write_text(_BAKE_SCRIPT)
    script.chmod(0o755)
    (rootfs / "etc/systemd/system/ght-lab-bake.service").write_text(_BAKE_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "ght-lab-bake.service").symlink_to("/etc/systemd/system/ght-lab-bake.service")


def _bake(build_dir: Path, layout: tuple[Filesystem, ...]) -> None:
    from ght_socle.lab.vm import QEMU, TCG_OPTIONS, choose_accelerator

    require_tools(QEMU)
    accelerator = choose_accelerator(build_dir / "vmlinuz")
    console = build_dir / "bake-console.log"
    accel = ["-accel", "kvm", "-cpu", "host"] if accelerator == "kvm" else ["-accel", TCG_OPTIONS]
    argv = [QEMU, *accel, "-machine", "pc", "-m", "1024", "-smp", "2", "-nodefaults", "-display", "none",
            "-no-reboot", "-kernel", str(build_dir / "vmlinuz"), "-initrd", str(build_dir / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 cloud-init=disabled ght_lab_bake",
            "-serial", f"file:{console}", "-device", "virtio-rng-pci"]
    for fs in layout:
        argv += ["-drive", f"file={build_dir / f'{fs.label}.raw'},if=virtio,format=raw"]
    try:
        subprocess.run(argv, check=False, capture_output=True, timeout=BAKE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SocleError(f"the build-time boot did not finish in {BAKE_TIMEOUT_SECONDS} s "
                         f"(console: {console})", where="lab") from None
    text = console.read_text(errors="replace") if console.exists() else ""
    if "ght-lab-bake: done" not in text:
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no console output"]
        raise SocleError(f"the build-time boot failed: {last[0].strip()[:200]}", where="lab")
    console.unlink()


def _extract_kernel(rootfs: Path, build_dir: Path) -> None:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise SocleError("the image has no kernel or initrd in /boot (linux-image-amd64 not installed?)",
                         where="lab")
    shutil.copy2(kernels[-1], build_dir / "vmlinuz")
    shutil.copy2(initrds[-1], build_dir / "initrd.img")


def _build_filesystems(rootfs: Path, build_dir: Path, layout: tuple[Filesystem, ...]) -> None:
    # Deepest mount points first, so /var/log/audit leaves /var/log before /var/log leaves /var;
    # each emptied mount point stays behind as a directory on its parent filesystem.
    staging = build_dir / "parts"
    staging.mkdir()
    for fs in sorted(layout, key=lambda f: f.mountpoint.count("/") if f.mountpoint != "/" else -1,
                     reverse=True):
        if fs.mountpoint == "/":
            source = rootfs
        else:
            inside = rootfs / fs.mountpoint.lstrip("/")
            source = staging / fs.label
            if inside.exists():
                inside.rename(source)
            else:
                source.mkdir()
            source.chmod(fs.mode)
            inside.mkdir()
            inside.chmod(fs.mode)
        disk = build_dir / f"{fs.label}.raw"
        run(["mkfs.ext4", "-q", "-L", fs.label, "-d", source, disk, f"{fs.size_mb}M"],
            what=f"mkfs.ext4 for {fs.mountpoint}")
        # Give the filesystem's root directory the mount point's mode (1777 for /tmp, ...).
        run(["debugfs", "-w", "-R", f"set_inode_field / mode 0{0o40000 | fs.mode:o}", disk],
            what=f"set the mode of {fs.mountpoint}")
    shutil.rmtree(staging)
