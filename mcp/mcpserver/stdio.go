package mcpserver

import (
	"context"
	"fmt"
	"io"
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves, over in and out (an agent's stdio), the tools of the
// airlock MCP server at endpoint (https://AIRLOCK/mcp), calling them there
// with the agent's token: `airlock mcp`. Answers come from the running
// gateway, so they are its answers.
func ServeStdio(ctx context.Context, endpoint, token, version string, in io.Reader, out io.Writer) error {
	client := sdk.NewClient(&sdk.Implementation{Name: "airlock-mcp", Version: version}, nil)
	hc := &http.Client{Transport: bearer{token: token, next: http.DefaultTransport}}
	remote, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return fmt.Errorf("airlock mcp: connecting to %s: %w", endpoint, err)
	}
	defer remote.Close()
	tools, err := remote.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("airlock mcp: listing the tools of %s: %w", endpoint, err)
	}
	srv := sdk.NewServer(&sdk.Implementation{Name: "airlock", Version: version}, &sdk.ServerOptions{Instructions: instructions})
	for _, t := range tools.Tools {
		name := t.Name
		srv.AddTool(t, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return remote.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: req.Params.Arguments})
		})
	}
	return srv.Run(ctx, &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopCloser{out}})
}

// bearer adds the agent's token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
