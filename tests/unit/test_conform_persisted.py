"""The sysctl.d merge of the conformance suites: the values a host's files give it at its next boot.

systemd-sysctl's rules (sysctl.d(5)): files in name order across directories, /etc hiding /usr/lib by
name, a link to /dev/null masking, later assignments winning, globs below explicit keys.
"""

from __future__ import annotations

from ght_socle.conform.persisted import boot_order, merge_sysctl_files, normalize_sysctl_key

PROTECT_LINKS = "# Protected links\nfs.protected_fifos = 1\nfs.protected_hardlinks = 1\n"
HARDENED_OLD_NAME = ["/etc/sysctl.d", "90-ght-hardening.conf", "fs.protected_fifos = 2\nkernel.sysrq = 0\n"]
DEBIAN = ["/usr/lib/sysctl.d", "99-protect-links.conf", PROTECT_LINKS]


def test_a_distribution_file_sorting_later_undoes_the_hardened_value() -> None:
    merged = merge_sysctl_files([HARDENED_OLD_NAME, DEBIAN])
    setting = merged.get("fs.protected_fifos")
    assert setting is not None
    assert (setting.value, setting.source) == ("1", "/usr/lib/sysctl.d/99-protect-links.conf")
    assert merged.get("kernel.sysrq") == merged.explicit["kernel.sysrq"]


def test_the_hardened_file_named_to_sort_last_wins() -> None:
    hardened = ["/etc/sysctl.d", "99-zz-ght-hardening.conf", "fs.protected_fifos = 2\n"]
    setting = merge_sysctl_files([hardened, DEBIAN]).get("fs.protected_fifos")
    assert setting is not None and setting.value == "2"
    assert setting.source == "/etc/sysctl.d/99-zz-ght-hardening.conf"


def test_a_same_named_file_in_etc_hides_the_distribution_file_and_dev_null_masks_it() -> None:
    override = ["/etc/sysctl.d", "99-protect-links.conf", "fs.protected_fifos = 2\n"]
    assert boot_order([override, HARDENED_OLD_NAME, DEBIAN]) == [
        ("/etc/sysctl.d/90-ght-hardening.conf", HARDENED_OLD_NAME[2]),
        ("/etc/sysctl.d/99-protect-links.conf", "fs.protected_fifos = 2\n")]
    masked = merge_sysctl_files([HARDENED_OLD_NAME, ["/etc/sysctl.d", "99-protect-links.conf", None], DEBIAN])
    setting = masked.get("fs.protected_fifos")
    assert setting is not None and setting.value == "2"
    assert masked.get("fs.protected_hardlinks") is None


def test_comments_dashes_slashes_and_spacing() -> None:
    text = "; a comment\n# another\n-net/ipv4/ip_forward=0\nkernel.printk =  3   4 1 3\n"
    merged = merge_sysctl_files([["/etc/sysctl.d", "50-x.conf", text]])
    assert merged.explicit["net.ipv4.ip_forward"].value == "0"
    assert merged.explicit["kernel.printk"].value == "3 4 1 3"
    assert normalize_sysctl_key("net.ipv4.conf.eth0/1.rp_filter") == "net.ipv4.conf.eth0/1.rp_filter"


def test_globs_apply_below_explicit_keys_and_not_to_excluded_ones() -> None:
    systemd_default = ("net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n"
                       "-net.ipv4.conf.all.rp_filter\n")
    hardened = ["/etc/sysctl.d", "99-zz-ght-hardening.conf", "net.ipv4.conf.default.rp_filter = 1\n"]
    merged = merge_sysctl_files([hardened, ["/usr/lib/sysctl.d", "50-default.conf", systemd_default]])
    assert merged.get("net.ipv4.conf.all.rp_filter") is None
    eth0 = merged.get("net.ipv4.conf.eth0.rp_filter")
    assert eth0 is not None and eth0.value == "2"
    default = merged.get("net.ipv4.conf.default.rp_filter")
    assert default is not None and default.value == "1"
