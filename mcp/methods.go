package mcp

// Kind says what one message of an MCP request does.
type Kind int

const (
	// Protocol messages manage the connection or list what the server
	// offers: they touch no Google Cloud data (initialize, ping, */list,
	// notifications, server/discover, subscriptions/listen, tasks/*).
	Protocol Kind = iota + 1
	// ToolCall is tools/call: the server acts, maybe on Google Cloud.
	ToolCall
	// ResourceRead is resources/read: data as sensitive as a tool result.
	ResourceRead
	// PromptGet is prompts/get: a prompt template of the server.
	PromptGet
	// ClientResponse is a client's answer to a request the server sent
	// (2025-11-25 and earlier: sampling, elicitation, roots).
	ClientResponse
	// Transport is a GET (the stream for server messages) or a DELETE (the
	// end of a session) on the endpoint: no JSON-RPC message at all.
	Transport
)

var kindNames = [...]string{"", "protocol", "tool_call", "resource_read", "prompt_get", "client_response", "transport"}

// String is a stable lower-case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "unknown"
}

// requestMethods are the JSON-RPC requests a client may send to a server,
// in the revisions 2025-03-26 to 2026-07-28 (tasks as the official
// extension of 2026-07-28 and the experimental feature of 2025-11-25).
var requestMethods = map[string]Kind{
	"initialize":               Protocol,
	"ping":                     Protocol,
	"tools/list":               Protocol,
	"tools/call":               ToolCall,
	"resources/list":           Protocol,
	"resources/templates/list": Protocol,
	"resources/read":           ResourceRead,
	"resources/subscribe":      Protocol,
	"resources/unsubscribe":    Protocol,
	"prompts/list":             Protocol,
	"prompts/get":              PromptGet,
	"completion/complete":      Protocol,
	"logging/setLevel":         Protocol,
	"server/discover":          Protocol,
	"subscriptions/listen":     Protocol,
	"tasks/get":                Protocol,
	"tasks/list":               Protocol,
	"tasks/cancel":             Protocol,
	"tasks/result":             Protocol,
	"tasks/update":             Protocol,
}

// notificationMethods are the notifications a client may send.
var notificationMethods = map[string]bool{
	"notifications/initialized":        true,
	"notifications/cancelled":          true,
	"notifications/progress":           true,
	"notifications/roots/list_changed": true,
}

// namedMethods carry a name in Mcp-Name: the tool or prompt name, or the
// resource URI.
var namedMethods = map[string]string{
	"tools/call":     "name",
	"prompts/get":    "name",
	"resources/read": "uri",
}

// KnownMethod reports whether airlock recognises a client's method.
func KnownMethod(m string) bool {
	_, ok := requestMethods[m]
	return ok || notificationMethods[m]
}
