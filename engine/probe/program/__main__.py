"""One GHT-style component and two stack outputs read from the configuration, one of them secret."""

import pulumi


class Probe(pulumi.ComponentResource):
    """A component with no child: enough for the engine to register, diff and store a resource."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ght:probe:Probe", name, None, opts)
        self.register_outputs({})


config = pulumi.Config()
Probe("ght-probe")
pulumi.export("greeting", config.require("greeting"))
pulumi.export("token", config.require_secret("token"))
