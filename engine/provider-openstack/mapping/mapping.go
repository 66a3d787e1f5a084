// Package mapping describes the Terraform OpenStack provider to the Pulumi Terraform bridge under
// the type tokens of the published Python SDK pulumi_openstack.
//
// The tokens are not written out here: the build reads them from the installed SDK (a JSON list of
// its resource and function tokens) and each Terraform resource or data source is matched to the SDK
// token by one rule. The rule: the Terraform name is openstack_<service>_<words>[_v<N>]; <service>
// gives the Pulumi module (modules below); the token's name, lower-cased and without a leading "get",
// equals <words> joined, with or without the version suffix. The SDK's spelling of the name (its
// capitals, a kept or dropped version) is taken as published. The few entries the rule cannot reach
// are listed in the override tables, with the reason.
package mapping

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-provider-openstack/terraform-provider-openstack/v3/openstack"
)

const (
	packageName = "openstack"
	tfPrefix    = "openstack_"
	indexModule = "index"
)

// SDKTokens lists what the published SDK sends: resource type tokens and function (invoke) tokens.
type SDKTokens struct {
	Resources []string `json:"resources"`
	Functions []string `json:"functions"`
}

// modules maps the service segment of a Terraform name to the SDK's module; services not listed
// live in the index module under their whole name.
var modules = map[string]string{
	"bgpvpn":           "bgpvpn",
	"blockstorage":     "blockstorage",
	"compute":          "compute",
	"containerinfra":   "containerinfra",
	"db":               "database",
	"dns":              "dns",
	"fw":               "firewall",
	"identity":         "identity",
	"images":           "images",
	"keymanager":       "keymanager",
	"lb":               "loadbalancer",
	"loadbalancer":     "loadbalancer",
	"networking":       "networking",
	"objectstorage":    "objectstorage",
	"orchestration":    "orchestration",
	"sharedfilesystem": "sharedfilesystem",
	"vpnaas":           "vpnaas",
}

// resourceOverrides: the SDK names these resources otherwise than their Terraform words.
var resourceOverrides = map[string]string{
	"openstack_blockstorage_quotaset_v3": "QuoteSetV3",      // the SDK's spelling
	"openstack_objectstorage_object_v1":  "ContainerObject", // an object lives in a container
}

// functionOverrides: the same for data sources.
var functionOverrides = map[string]string{
	"openstack_dns_zone_v2":                            "getDnsZone",
	"openstack_sharedfilesystem_availability_zones_v2": "getAvailbilityZones", // the SDK's spelling
	// openstack_lb_flavor_v2 holds getFlavorV2; the older loadbalancer_ name keeps a deprecated function.
	"openstack_loadbalancer_flavor_v2": "getLbFlavorDeprecated",
}

var versionSuffix = regexp.MustCompile(`_v[0-9]+$`)

// tokenIndex finds SDK tokens by module and normalised name (lower case, no "get" for a function).
type tokenIndex struct {
	byModule map[string]map[string]string
	function bool
}

func newTokenIndex(all []string, function bool) (tokenIndex, error) {
	index := tokenIndex{byModule: map[string]map[string]string{}, function: function}
	for _, token := range all {
		parts := strings.Split(token, ":")
		if len(parts) != 3 || parts[0] != packageName || !strings.Contains(parts[1], "/") {
			return tokenIndex{}, fmt.Errorf("%q is not an %s token", token, packageName)
		}
		module := strings.SplitN(parts[1], "/", 2)[0]
		if index.byModule[module] == nil {
			index.byModule[module] = map[string]string{}
		}
		index.byModule[module][normalise(parts[2], function)] = token
	}
	return index, nil
}

func normalise(name string, function bool) string {
	name = strings.ToLower(strings.ReplaceAll(name, "_", ""))
	if function {
		name = strings.TrimPrefix(name, "get")
	}
	return name
}

// split a Terraform name into the SDK module and the words the token name is made of.
func split(tfName string) (module string, words string) {
	rest := strings.TrimPrefix(tfName, tfPrefix)
	service, tail, _ := strings.Cut(rest, "_")
	if module, known := modules[service]; known && tail != "" {
		return module, tail
	}
	return indexModule, rest
}

// lookup finds the SDK token of a Terraform name: an override, else the rule.
func (index tokenIndex) lookup(tfName string, overrides map[string]string) (string, bool) {
	module, words := split(tfName)
	if name, found := overrides[tfName]; found {
		token, known := index.byModule[module][normalise(name, index.function)]
		return token, known
	}
	for _, candidate := range []string{words, versionSuffix.ReplaceAllString(words, "")} {
		if token, found := index.byModule[module][normalise(candidate, false)]; found {
			return token, true
		}
	}
	return "", false
}

// legacy finds the token an older SDK used for a resource now in a named module: the whole
// Terraform name in the index module (the SDK still carries it, deprecated).
func (index tokenIndex) legacy(tfName string) (string, bool) {
	module, _ := split(tfName)
	if module == indexModule {
		return "", false
	}
	token, found := index.byModule[indexModule][normalise(strings.TrimPrefix(tfName, tfPrefix), false)]
	return token, found
}

func moduleOf(token string) string {
	return strings.SplitN(strings.Split(token, ":")[1], "/", 2)[0]
}

// Unmapped lists the Terraform names the SDK has no token for; they are left out of the provider.
type Unmapped struct {
	Resources   []string
	DataSources []string
}

// ProviderInfo describes the Terraform provider under the SDK's tokens. sdkTokens is the JSON of an
// SDKTokens; version is the provider's (and SDK's) version.
func ProviderInfo(version string, sdkTokens []byte) (tfbridge.ProviderInfo, Unmapped, error) {
	var sdk SDKTokens
	if err := json.Unmarshal(sdkTokens, &sdk); err != nil {
		return tfbridge.ProviderInfo{}, Unmapped{}, fmt.Errorf("SDK token list: %w", err)
	}
	resources, err := newTokenIndex(sdk.Resources, false)
	if err != nil {
		return tfbridge.ProviderInfo{}, Unmapped{}, err
	}
	functions, err := newTokenIndex(sdk.Functions, true)
	if err != nil {
		return tfbridge.ProviderInfo{}, Unmapped{}, err
	}

	upstream := shimv2.NewProvider(openstack.Provider())
	prov := tfbridge.ProviderInfo{
		P:                       upstream,
		Name:                    packageName,
		Version:                 version,
		Description:             "OpenStack resources, bridged from the Terraform OpenStack provider.",
		License:                 "Apache-2.0",
		GitHubOrg:               "terraform-provider-openstack",
		TFProviderModuleVersion: "v3",
		MetadataInfo:            tfbridge.NewProviderMetadata([]byte("{}")),
		Config:                  configFromEnvironment(),
		Resources:               map[string]*tfbridge.ResourceInfo{},
		DataSources:             map[string]*tfbridge.DataSourceInfo{},
		Python:                  &tfbridge.PythonInfo{RespectSchemaVersion: true},
	}

	var unmapped Unmapped
	var legacyResources, legacyFunctions []string
	upstream.ResourcesMap().Range(func(tfName string, _ shim.Resource) bool {
		token, found := resources.lookup(tfName, resourceOverrides)
		if !found {
			unmapped.Resources = append(unmapped.Resources, tfName)
			return true
		}
		prov.Resources[tfName] = &tfbridge.ResourceInfo{Tok: tokens.Type(token), Fields: resourceFields[tfName]}
		if _, found := resources.legacy(tfName); found {
			legacyResources = append(legacyResources, tfName)
		}
		return true
	})
	upstream.DataSourcesMap().Range(func(tfName string, _ shim.Resource) bool {
		token, found := functions.lookup(tfName, functionOverrides)
		if !found {
			unmapped.DataSources = append(unmapped.DataSources, tfName)
			return true
		}
		prov.DataSources[tfName] = &tfbridge.DataSourceInfo{Tok: tokens.ModuleMember(token)}
		if _, found := functions.legacy(tfName); found {
			legacyFunctions = append(legacyFunctions, tfName)
		}
		return true
	})
	// Renaming clones entries of the upstream maps: done after the walks above.
	for _, tfName := range legacyResources {
		info := prov.Resources[tfName]
		old, _ := resources.legacy(tfName)
		prov.RenameResourceWithAlias(tfName, tokens.Type(old), info.Tok, indexModule, moduleOf(string(info.Tok)), info)
	}
	for _, tfName := range legacyFunctions {
		info := prov.DataSources[tfName]
		old, _ := functions.legacy(tfName)
		prov.RenameDataSource(tfName, tokens.ModuleMember(old), info.Tok, indexModule, moduleOf(string(info.Tok)), info)
	}
	// Like Pulumi's providers: a resource whose `name` is not set gets <resource name>-<random suffix>.
	prov.SetAutonaming(255, "-")
	sort.Strings(unmapped.Resources)
	sort.Strings(unmapped.DataSources)
	return prov, unmapped, nil
}

// configFromEnvironment: provider settings that also read the OS_* variables of an openrc file.
func configFromEnvironment() map[string]*tfbridge.SchemaInfo {
	variables := map[string]string{
		"region":        "OS_REGION_NAME",
		"insecure":      "OS_INSECURE",
		"endpoint_type": "OS_ENDPOINT_TYPE",
		"swauth":        "OS_SWAUTH",
		"cloud":         "OS_CLOUD",
		"delayed_auth":  "OS_DELAYED_AUTH",
		"allow_reauth":  "OS_ALLOW_REAUTH",
	}
	config := map[string]*tfbridge.SchemaInfo{}
	for key, variable := range variables {
		config[key] = &tfbridge.SchemaInfo{Default: &tfbridge.DefaultInfo{EnvVars: []string{variable}}}
	}
	return config
}

// resourceFields: property names where the SDK departs from the name the bridge derives
// (camelCase of the Terraform name, plural for a list). The engine tests compare every property.
var resourceFields = map[string]map[string]*tfbridge.SchemaInfo{
	// "outputs" would clash with the resource's own outputs in the SDKs; the SDK sends StackOutputs.
	"openstack_orchestration_stack_v1": {"outputs": {Name: "StackOutputs"}},
}
