"""The SDK surface the provider plugin is built and checked against, read from pulumi_openstack's source."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ght_socle.engine.openstack_sdk import SdkSurface, read_surface
from ght_socle.engine.versions import OPENSTACK_VERSION

SMALL_SDK = {
    "pulumi-plugin.json": '{"resource": true, "name": "openstack", "version": "9.9.9"}',
    "provider.py": """
        import pulumi
        class ProviderArgs:
            @property
            @pulumi.getter(name="authUrl")
            def auth_url(self) -> Optional[pulumi.Input[str]]: ...
        class Provider(pulumi.ProviderResource):
            def terraform_config(__self__):
                return pulumi.runtime.call('pulumi:providers:openstack/terraformConfig', {}, res=__self__)
        """,
    "networking/network.py": """
        import pulumi
        @pulumi.input_type
        class NetworkArgs:
            @property
            @pulumi.getter(name="adminStateUp")
            def admin_state_up(self) -> Optional[pulumi.Input[bool]]: ...
            @property
            @pulumi.getter
            def segments(self) -> Optional[pulumi.Input[Sequence[pulumi.Input['NetworkSegmentArgs']]]]: ...
        @pulumi.type_token("openstack:networking/network:Network")
        class Network(pulumi.CustomResource):
            @property
            @pulumi.getter
            def name(self) -> pulumi.Output[str]: ...
        """,
    "networking/get_network.py": """
        import pulumi
        class GetNetworkResult:
            @property
            @pulumi.getter(name="externalNetwork")
            def external(self) -> bool: ...
        def get_network(name=None, opts=None):
            __args__ = dict()
            __args__['name'] = name
            __ret__ = pulumi.runtime.invoke('openstack:networking/getNetwork:getNetwork', __args__,
                                            typ=GetNetworkResult)
        def get_network_output(name=None, opts=None):
            __ret__ = pulumi.runtime.invoke_output('openstack:networking/getNetwork:getNetwork', {})
        """,
    "networking/_inputs.py": """
        import pulumi
        class NetworkSegmentArgs:
            @property
            @pulumi.getter(name="segmentationId")
            def segmentation_id(self) -> Optional[pulumi.Input[int]]: ...
        """,
}


@pytest.fixture(scope="module")
def installed() -> SdkSurface:
    return read_surface()


def test_the_rules_read_a_small_sdk(tmp_path: Path) -> None:
    for name, text in SMALL_SDK.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    surface = read_surface(tmp_path)
    assert surface.version == "9.9.9"
    network = surface.resources["openstack:networking/network:Network"]
    assert network.inputs.lists == {"adminStateUp": False, "segments": True}
    assert network.outputs.names == {"name"}
    lookup = surface.functions["openstack:networking/getNetwork:getNetwork"]
    assert (lookup.arguments, lookup.results.names) == ({"name"}, {"externalNetwork"})
    assert surface.function_of("networking", "get_network_output") == lookup
    assert surface.object_types[("networking", "NetworkSegment")][0].names == {"segmentationId"}
    assert surface.provider_settings.names == {"authUrl"}
    assert surface.methods == {"pulumi:providers:openstack/terraformConfig"}
    assert json.loads(surface.tokens_json()) == {
        "version": "9.9.9", "resources": ["openstack:networking/network:Network"],
        "functions": ["openstack:networking/getNetwork:getNetwork"]}


def test_the_installed_sdk_is_the_pinned_one(installed: SdkSurface) -> None:
    assert installed.version == OPENSTACK_VERSION


def test_the_installed_sdk_has_the_tokens_the_stacks_use(installed: SdkSurface) -> None:
    for token in ("openstack:networking/network:Network", "openstack:compute/instance:Instance",
                  "openstack:networking/secGroupRule:SecGroupRule", "openstack:vpnaas/siteConnection:SiteConnection"):
        assert token in installed.resources
    assert installed.function_of("images", "get_image_output") is installed.functions[
        "openstack:images/getImage:getImage"]
    subnet = installed.resources["openstack:networking/subnet:Subnet"]
    assert subnet.inputs.lists["allocationPools"] is True and subnet.inputs.lists["cidr"] is False
    assert {"authUrl", "region", "insecure"} <= installed.provider_settings.names
