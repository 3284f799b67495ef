// Package mcp recognises Model Context Protocol traffic to Google's remote
// MCP servers and maps each tool call to the Google Cloud operation it
// performs, so that one policy governs the REST call and the MCP tool that
// does the same thing. It knows nothing of Envoy or gRPC.
//
// # Endpoints
//
// Google serves its MCP servers on the API hosts themselves:
// https://SERVICE.googleapis.com/mcp, regional
// https://SERVICE.REGION.rep.googleapis.com/mcp, and variants below /mcp/
// (GKE's /mcp/read-only). A request whose host is a googleapis.com host
// (after the gateway's domain mapping) and whose path is /mcp or below it,
// and which no REST method of the catalog claims, is MCP. The server is the
// host's service ("compute").
//
// # Messages
//
// A POST body is one JSON-RPC 2.0 message or, in the revisions that allow
// it, a batch (a non-empty array, at most MaxBatch messages). Each message
// is a request (a method and an id: a string or an integer, never null), a
// notification (a method, no id) or a client's response to a server
// request (an id and a result or an error). A message that is none of these,
// an unknown method, or a body that cannot be read as JSON is refused before
// policy. The methods airlock knows are those of the revisions 2025-03-26 to
// 2026-07-28 (methods.go); every one reaches policy with mcp.method set.
// GET (the 2025-11-25 stream for server messages) and DELETE (the end of a
// session) on an endpoint are transport operations: they reach policy with
// mcp.method empty.
//
// # Headers and body
//
// A gateway that reads headers while the server reads the body must refuse
// any request where they disagree (SEP-2243). Mcp-Method must equal the
// method, Mcp-Name the tool or prompt name or the resource URI (base64
// sentinel decoded), every Mcp-Param-{Name} the argument its tool declared
// with x-mcp-header (integers compared as numbers); an argument declared so
// and present in the body needs its header. With MCP-Protocol-Version
// 2026-07-28 or later Mcp-Method is required on every request and Mcp-Name
// on the calls that name something, the version must equal the one in the
// body's _meta, and a batch is refused. A disagreement is refused with
// HeaderMismatch (-32020), HTTP 400.
//
// # Tools
//
// The catalog (catalog.json, curated from Google's "MCP Tools Reference"
// pages) lists each server's tools with the annotations Google declares and,
// where a tool does what a REST method does, that method's HTTP verb and
// path template with the arguments that fill it. A tool call is mapped by
// filling the template and recognising the result as a REST request with
// the gcp catalog: gcp.method, gcp.project, gcp.location, gcp.resource and
// gcp.readonly are then exactly those of the REST twin. A template argument
// that is missing leaves the call unmapped (gcp.method empty); one that is
// present but would change the path's structure (a "/" in a one-segment
// parameter, a dot segment) is refused before policy.
//
// Annotations learned from tools/list responses (Registry) take precedence
// over the catalog's: the live server is the source of truth. A tool that
// neither knows has no hints: it is not read-only and, by MCP's defaults,
// may be destructive.
package mcp
