// The OpenStack resource provider plugin: the Terraform OpenStack provider served through the
// Pulumi Terraform bridge, under the tokens of the pulumi_openstack SDK of the same version.
//
// Both embedded files are made by the build (src/ght_socle/engine/provider.py), not kept in git:
// sdk-tokens.json lists the SDK's tokens, schema.json is the package schema openstack-schema
// generated from the same mapping. They reach the compiler through `go build -overlay`.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"

	"github.com/ght-socle/ght-socle/engine/provider-openstack/mapping"
)

// version is set by the build: -ldflags "-X main.version=5.4.1".
var version = "0.0.0-unset"

//go:embed sdk-tokens.json
var sdkTokens []byte

//go:embed schema.json
var schema []byte

func main() {
	info, _, err := mapping.ProviderInfo(version, sdkTokens)
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
	tfbridge.Main("openstack", version, info, schema)
}
