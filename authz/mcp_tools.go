package authz

import (
	"context"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/resources"
)

// toolUnknowns are the variables a tools/list cannot know of the calls the
// caller might make: everything that depends on the arguments, and the
// request's headers, query and body.
var toolUnknowns = []string{
	"request.query", "request.headers", "request.body",
	"gcp.project", "gcp.location", "gcp.resource", "gcp.params",
	"mcp.arguments",
	"resource.kind", "resource.exists", "resource.labels", "resource.tags",
	"resource.project.id", "resource.project.number", "resource.project.name",
	"resource.project.exists", "resource.project.labels", "resource.project.tags",
	"resource.project.ancestors", "resource.project.ancestor_names",
}

// Callable reports, for each tool of a tools/list result, whether the
// caller in meta could ever call it under the policies in force: false
// only when every call of that tool, whatever its arguments, is denied
// (policies.Set.MayAllow). A tool's hints are those the server declares
// in the result; its REST method comes from the catalog. Without the
// caller in meta every tool is kept.
func (e *Engine) Callable(ctx context.Context, meta handoff.Metadata, tools []*mcp.Tool) []bool {
	keep := make([]bool, len(tools))
	for i := range keep {
		keep[i] = true
	}
	if meta.MCP == nil || meta.MCP.Caller == nil || e.opts.MCP == nil {
		return keep
	}
	m := meta.MCP
	set := e.policies.Load()
	id := callerIdentity(m.Caller)
	path := m.Path
	if path == "" {
		path = "/mcp"
	}
	for i, t := range tools {
		resolved := e.opts.MCP.ResolveTool(m.Host, m.Server, t.Name)
		op, mapped := e.opts.MCP.Skeleton(resolved)
		if !mapped {
			op.Service = m.Server
		}
		hints := t.Hints
		if t.Hints.ReadOnly == nil && t.Hints.Destructive == nil && resolved != nil {
			hints = resolved.Hints
		}
		in := policies.Input{
			Request:   policies.Request{Method: "POST", Host: m.Host, Path: path},
			Identity:  id,
			GCP:       op,
			SessionID: meta.SessionID,
			Now:       time.Now(),
			MCP: policies.MCP{Server: m.Server, Method: "tools/call", Tool: t.Name, Name: t.Name,
				ReadOnly: hints.IsReadOnly(), Destructive: hints.IsDestructive()},
		}
		if e.opts.Resources != nil {
			// Looked up never: every resource variable but availability is
			// unknown here.
			in.Resources = resources.ForRequest(e.opts.Resources, op)
		}
		ok, err := set.MayAllow(ctx, in, toolUnknowns)
		if err != nil {
			e.log.Error("deciding whether a tool may be listed", "tool", t.Name, "err", err)
			continue
		}
		keep[i] = ok
	}
	return keep
}

// Learn records the tools a server declared in a tools/list result.
func (e *Engine) Learn(host string, tools []*mcp.Tool) {
	if e.opts.MCP != nil {
		e.opts.MCP.Registry().Learn(host, tools)
	}
}
