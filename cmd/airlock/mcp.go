package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/mcp/mcpserver"
)

// mcpPolicy is what ext_proc asks about MCP responses: nil when MCP is off.
func mcpPolicy(engine *authz.Engine, rec *mcp.Recognizer) extproc.MCPPolicy {
	if rec == nil {
		return nil
	}
	return engine
}

// serveMCP serves airlock's own MCP server for agents at /mcp on
// listen.http, with its protected resource metadata.
func (s *server) serveMCP(mux *http.ServeMux, engine *authz.Engine, verifier identity.Verifier, svc *approvals.Service, publicURL string, httpLis net.Listener) {
	var issuers []string
	for _, is := range s.cfg.Identity.Issuers {
		issuers = append(issuers, is.Issuer)
	}
	if s.cfg.Identity.Dev && httpLis != nil {
		issuers = append(issuers, "http://"+httpLis.Addr().String()+"/dev")
	}
	opts := mcpserver.Options{Decider: engine, Verifier: verifier, Approvals: svc, PublicURL: publicURL, Issuers: issuers,
		Version: version, Logger: s.log.With("component", "mcp-server")}
	h := mcpserver.Handler(opts)
	// wait_for_approval answers within mcpserver.MaxWait, past the
	// server's write timeout for other routes.
	mux.Handle(mcpserver.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(mcpserver.MaxWait + 15*time.Second))
		h.ServeHTTP(w, r)
	}))
	meta := mcpserver.MetadataHandler(opts)
	mux.Handle(mcpserver.MetadataPath, meta)
	mux.Handle("/.well-known/oauth-protected-resource", meta)
	s.log.Info("airlock's MCP server for agents on /mcp", "resource", strings.TrimSuffix(publicURL, "/")+mcpserver.Path)
}

func runMCP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mcp", `usage: airlock mcp [--server URL] [--token TOKEN]

Serves airlock's MCP server for agents over stdio (explain_request,
request_approval, get_approval, wait_for_approval, list_my_grants), calling
the running gateway's /mcp with your token. Add it to an agent as a stdio
MCP server, e.g. {"command": "airlock", "args": ["mcp", "--server", "https://airlock.example.com"]}.
`+exitCodes, stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "airlock's HTTP address (approvals.public_url)")
	token := fs.String("token", "", "your OIDC token (default $AIRLOCK_TOKEN)")
	pos, code, ok := parseFlags(fs, args, stdout)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "airlock mcp: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if *token == "" {
		*token = os.Getenv("AIRLOCK_TOKEN")
	}
	if *token == "" {
		fmt.Fprintln(stderr, "airlock mcp: no token: pass --token or set AIRLOCK_TOKEN to your OIDC token")
		return 2
	}
	endpoint := strings.TrimSuffix(*server, "/") + mcpserver.Path
	if err := mcpserver.ServeStdio(ctx, endpoint, *token, version, os.Stdin, stdout); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
