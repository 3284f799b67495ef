package policies

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
)

// Variables are the CEL variables a policy expression may use, with their
// types. A name outside this table is a load error, so a typo such as
// gcp.methdo is caught before a request ever arrives.
var Variables = []struct {
	Name string
	Type *cel.Type
	Doc  string
}{
	{"request.method", cel.StringType, "effective HTTP method, X-HTTP-Method-Override applied, upper case"},
	{"request.host", cel.StringType, "lower-case host without the port"},
	{"request.path", cel.StringType, "normalised path without the query"},
	{"request.query", cel.MapType(cel.StringType, cel.ListType(cel.StringType)), "query parameters"},
	{"request.headers", cel.MapType(cel.StringType, cel.StringType), "lower-case header names; credentials removed"},
	{"request.body", cel.DynType, "the JSON body as Google reads it; null without a body; an error (every use fails closed) when a body exists but cannot be read"},
	{"identity.subject", cel.StringType, "the token's sub claim"},
	{"identity.email", cel.StringType, "the token's email claim"},
	{"identity.issuer", cel.StringType, "the token's iss claim"},
	{"identity.groups", cel.ListType(cel.StringType), "groups from the configured groups claim"},
	{"identity.actor", cel.StringType, "RFC 8693 act.sub: the agent acting for the subject"},
	{"identity.claims", cel.MapType(cel.StringType, cel.DynType), "every claim of the token"},
	{"gcp.service", cel.StringType, "API name, e.g. compute"},
	{"gcp.version", cel.StringType, "API version, e.g. v1"},
	{"gcp.method", cel.StringType, "Discovery method id, empty when unknown"},
	{"gcp.project", cel.StringType, "project from the path parameters"},
	{"gcp.location", cel.StringType, "zone, region or location from the path parameters"},
	{"gcp.resource", cel.StringType, "full resource path"},
	{"gcp.readonly", cel.BoolType, "true when the operation does not change state"},
	{"gcp.long_running", cel.BoolType, "true when the method returns a long-running operation"},
	{"gcp.params", cel.MapType(cel.StringType, cel.StringType), "path parameters by their Discovery names"},
	{"session.id", cel.StringType, "the session the request belongs to"},
	{"now", cel.TimestampType, "the time of the request"},
	{"mcp.server", cel.StringType, "the Google MCP server of an MCP request (compute for https://compute.googleapis.com/mcp); empty for a REST request"},
	{"mcp.method", cel.StringType, "the JSON-RPC method of an MCP message (tools/call, tools/list, ...); empty for a REST request, a GET or DELETE of the MCP endpoint, and a client's response"},
	{"mcp.tool", cel.StringType, "the tool a tools/call calls; empty otherwise"},
	{"mcp.name", cel.StringType, "what the message names: the tool or prompt name, or the resource URI (Mcp-Name)"},
	{"mcp.arguments", cel.MapType(cel.StringType, cel.DynType), "the arguments of a tools/call or prompts/get"},
	{"mcp.readonly", cel.BoolType, "the tool's readOnlyHint as the server declared it (false for an unknown tool); true for a message that is no tool call"},
	{"mcp.destructive", cel.BoolType, "the tool's destructiveHint as the server declared it (MCP's default true for a tool that is not read-only, and for an unknown tool)"},
	{"resource.available", cel.BoolType, "true when airlock can look resources up (resources.credential); when false every other resource.* variable is an error, so guard reads with it where a policy must also work without lookups"},
	{"resource.kind", cel.StringType, "what the request acts on: bucket, instance, disk, secret, sql_instance or project; empty for other targets"},
	{"resource.exists", cel.BoolType, "false when Google says the target does not exist"},
	{"resource.labels", cel.MapType(cel.StringType, cel.StringType), "the target's own labels (a bucket's, an instance's, a project's...)"},
	{"resource.tags", cel.MapType(cel.StringType, cel.StringType), "the target's effective tags, where airlock reads them (projects)"},
	{"resource.project.id", cel.StringType, "the project's id, resolved from a number or a bucket"},
	{"resource.project.number", cel.StringType, "the project's number"},
	{"resource.project.name", cel.StringType, "the project's display name"},
	{"resource.project.exists", cel.BoolType, "false when Google says the project does not exist"},
	{"resource.project.labels", cel.MapType(cel.StringType, cel.StringType), "the project's labels"},
	{"resource.project.tags", cel.MapType(cel.StringType, cel.StringType), "the project's effective tags, by short key (env) and namespaced key (123456/env), to the short value"},
	{"resource.project.ancestors", cel.ListType(cel.StringType), "folders and organization above the project, nearest first: folders/123, organizations/456"},
	{"resource.project.ancestor_names", cel.ListType(cel.StringType), "the display names of resource.project.ancestors"},
}

// Variable slots, in the order of Variables.
const (
	varRequestMethod = iota
	varRequestHost
	varRequestPath
	varRequestQuery
	varRequestHeaders
	varRequestBody
	varIdentitySubject
	varIdentityEmail
	varIdentityIssuer
	varIdentityGroups
	varIdentityActor
	varIdentityClaims
	varGCPService
	varGCPVersion
	varGCPMethod
	varGCPProject
	varGCPLocation
	varGCPResource
	varGCPReadOnly
	varGCPLongRunning
	varGCPParams
	varSessionID
	varNow
	varMCPServer
	varMCPMethod
	varMCPTool
	varMCPName
	varMCPArguments
	varMCPReadOnly
	varMCPDestructive
	varResourceAvailable
	varResourceKind
	varResourceExists
	varResourceLabels
	varResourceTags
	varProjectID
	varProjectNumber
	varProjectName
	varProjectExists
	varProjectLabels
	varProjectTags
	varProjectAncestors
	varProjectAncestorNames
	numVars
)

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// celEnv returns the shared CEL environment, built once.
func celEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		opts := make([]cel.EnvOption, 0, len(Variables)+10)
		for _, v := range Variables {
			opts = append(opts, cel.Variable(v.Name, v.Type))
		}
		opts = append(opts,
			ext.Strings(),
			ext.Lists(),
			ext.Sets(),
			ext.Encoders(),
			ext.Math(),
			ext.Bindings(),
			ext.TwoVarComprehensions(),
			cel.OptionalTypes(),
			cel.CrossTypeNumericComparisons(true),
			cel.DefaultUTCTimeZone(true),
			cel.ParserExpressionSizeLimit(16384),
		)
		envVal, envErr = cel.NewEnv(opts...)
		if envErr != nil {
			envErr = fmt.Errorf("policies: build CEL environment: %w", envErr)
		}
	})
	return envVal, envErr
}
