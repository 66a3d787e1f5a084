"""The local cloud's configuration: rendered files, stack needs, package install guards, CLI errors."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest

from ght_socle.cli import main
from ght_socle.cloud import packages, render, requirements
from ght_socle.cloud.layout import Layout
from ght_socle.cloud.services import CONTROL_PLANE, CONTROL_PLANE_TRANSPORT, KEYSTONE
from ght_socle.errors import ConfigError, SocleError
from ght_socle.paths import stacks_dir


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    cloud = Layout(tmp_path / "cloud")
    cloud.make()
    return cloud


def _parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    return parser


def test_every_service_renders_to_loopback_one_worker_and_the_state_dir(layout: Layout) -> None:
    secrets = render.Secrets.load_or_create(layout)
    values = render.context(layout, secrets, "eu-fr-1")
    for service in CONTROL_PLANE:
        files = render.render(service, values)
        assert set(files) == {template.removesuffix(".j2") for template in service.configs}
        for name, text in files.items():
            parsed = _parse(text)
            default = parsed.defaults()
            if "log_file" in default:
                assert default["log_file"] == str(layout.log(service.name))
            for key in ("bind_host", "osapi_compute_listen", "osapi_volume_listen"):
                if key in default:
                    assert default[key] == "127.0.0.1", (service.name, name, key)
            for key in ("workers", "api_workers", "osapi_compute_workers", "osapi_volume_workers"):
                if key in default:
                    assert default[key] == "1", (service.name, name, key)
            if parsed.has_section("keystone_authtoken"):
                assert parsed["keystone_authtoken"]["username"] == service.name
                assert parsed["keystone_authtoken"]["password"] == secrets.services[service.name]
                assert parsed["keystone_authtoken"]["auth_url"] == KEYSTONE.url("/v3")
            if "transport_url" in default:
                assert default["transport_url"] == CONTROL_PLANE_TRANSPORT
            assert "/var/lib/" not in text and "/etc/" not in text


def test_database_urls_use_the_unix_socket_and_each_its_own_user(layout: Layout) -> None:
    secrets = render.Secrets.load_or_create(layout)
    values = render.context(layout, secrets, "eu-fr-1")
    for name, url in values["databases"].items():
        assert url.startswith(f"mysql+pymysql://{name}:{secrets.databases[name]}@localhost/{name}?")
        assert f"unix_socket={layout.mysql_socket}" in url


def test_rendered_files_and_secrets_are_private_and_stable(layout: Layout) -> None:
    first = render.Secrets.load_or_create(layout)
    assert stat.S_IMODE(layout.secrets_file.stat().st_mode) == 0o600
    again = render.Secrets.load_or_create(layout)
    assert again == first
    assert len({first.admin, first.stacks, *first.services.values(), *first.databases.values()}) == \
        2 + len(first.services) + len(first.databases)
    values = render.context(layout, first, "eu-fr-1")
    digest = render.write(layout, KEYSTONE, render.render(KEYSTONE, values))
    written = layout.etc / "keystone" / "keystone.conf"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert render.write(layout, KEYSTONE, render.render(KEYSTONE, values)) == digest
    changed = render.render(KEYSTONE, render.context(layout, first, "eu-fr-2"))
    assert render.write(layout, KEYSTONE, {**changed, "keystone.conf": changed["keystone.conf"] + "#\n"}) != digest


def test_unreadable_secrets_file_is_one_line_error(layout: Layout) -> None:
    layout.secrets_file.write_text("{not json")
    with pytest.raises(SocleError) as error:
        render.Secrets.load_or_create(layout)
    assert str(layout.secrets_file) in str(error.value)
    assert "\n" not in str(error.value)


def test_the_stack_configs_need_what_the_local_cloud_seeds() -> None:
    needs = requirements.read_needs(requirements.stack_config_files(stacks_dir() / "config"))
    assert needs.regions == {"eu-fr-1"}
    assert needs.external_networks == {"Ext-Net"}
    assert needs.images == {"debian-12-ght-golden"}
    assert "encrypted-luks" in needs.volume_types
    assert {"b3-8", "b3-16"} <= set(needs.flavors)
    assert needs.flavors["b3-8"] == requirements.Flavor("b3-8", vcpus=2, ram_mib=8192,
                                                        disk_gb=requirements.FLAVOR_DISK_GB)


def test_a_flavor_the_cloud_cannot_size_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "Pulumi.odd.yaml"
    config.write_text("config:\n  openstack:region: eu-fr-1\n  ght-socle:external_network: Ext-Net\n"
                      "  ght-socle:roles:\n    web: {flavor: huge, image: img, volume_type: vt}\n")
    with pytest.raises(ConfigError) as error:
        requirements.read_needs([config])
    message = str(error.value)
    assert message.startswith(f"{config}: key ght-socle:roles.web.flavor: flavor 'huge'")
    assert "\n" not in message


def test_a_missing_key_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "Pulumi.bare.yaml"
    config.write_text("config:\n  openstack:region: eu-fr-1\n")
    with pytest.raises(ConfigError, match=r"Pulumi.bare.yaml: key config: missing key ght-socle:external_network"):
        requirements.read_needs([config])


def test_debconf_answers_decline_every_self_configuration() -> None:
    answers = packages.debconf_answers().splitlines()
    for line in ("keystone keystone/configure_db boolean false", "novaapi novaapi/configure_db boolean false",
                 "neutron neutron/configure_rabbit boolean false", "glance glance/configure_ksat boolean false",
                 "keystone keystone/register-endpoint boolean false"):
        assert line in answers
    assert all(line.endswith(" boolean false") for line in answers)


def test_service_starts_are_denied_during_install_then_restored(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with packages.services_denied(policy):
        assert policy.read_text().rstrip().endswith("exit 101")
        assert policy.stat().st_mode & 0o111
    assert not policy.exists()
    policy.write_text("#!/bin/sh\nexit 0\n")
    policy.chmod(0o700)
    with pytest.raises(RuntimeError), packages.services_denied(policy):
        raise RuntimeError("install failed")
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert stat.S_IMODE(policy.stat().st_mode) == 0o700


def test_full_cloud_without_control_plane_flag_is_one_line_error(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLE_STATE", str(tmp_path))
    assert main(["cloud", "up"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--control-plane" in err[0]
    assert not (tmp_path / "cloud").exists()


def test_status_without_a_cloud_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLE_STATE", str(tmp_path))
    assert main(["cloud", "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"socle: error: {tmp_path / 'cloud'}: no local cloud: run `socle cloud up --control-plane` first"]


def test_cloud_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cloud"])
    assert exit_info.value.code == 2
    assert len([line for line in capsys.readouterr().err.splitlines() if "error:" in line]) == 1
