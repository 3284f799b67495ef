package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/handoff"
)

// headerFlags collects repeated --header "name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

const checkUsage = `usage: airlock check --url URL [--method M] [--token T] [flags]

Asks a running airlock for the decision on one request, as Envoy would, and
prints the decision, the operation recognised, the rules that decided and,
for a held request, the approval to ask for. Nothing is sent to Google.

Exit status: 0 allowed, 1 no answer (or another error), 2 usage error,
3 denied, held for approval or refused.
`

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("check", checkUsage, stderr)
	server := fl.String("server", "", "address of airlock's ext_authz gRPC listener (default: listen.authz of --config, else 127.0.0.1:9001)")
	cfgPath := fl.String("config", "", "read the server address from this airlock.yaml")
	method := fl.String("method", "GET", "HTTP method of the request")
	rawURL := fl.String("url", "", "full URL of the Google Cloud request, e.g. https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances")
	token := fl.String("token", "", "the agent's OIDC token (default: $AIRLOCK_TOKEN)")
	body := fl.String("body", "", "request body (JSON); @FILE reads a file")
	session := fl.String("session", "", "x-airlock-session header value")
	asJSON := fl.Bool("json", false, "print the decision as JSON")
	timeout := fl.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	var headers headerFlags
	fl.Var(&headers, "header", `extra request header "name: value" (repeatable)`)
	pos, code, ok := parseFlags(fl, args, stdout)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "airlock check: unexpected argument %q (the URL goes in --url)\n", pos[0])
		return exitUsage
	}
	if *rawURL == "" {
		fmt.Fprintln(stderr, "airlock check: --url is required")
		return 2
	}
	addr, err := serverAddr(*server, *cfgPath, "127.0.0.1:9001", func(c *config.Config) string { return c.Listen.Authz })
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	*server = addr
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		fmt.Fprintf(stderr, "airlock check: --url %q is not an absolute URL\n", *rawURL)
		return 2
	}
	if *token == "" {
		*token = os.Getenv("AIRLOCK_TOKEN")
	}
	var bodyBytes []byte
	if strings.HasPrefix(*body, "@") {
		bodyBytes, err = os.ReadFile(strings.TrimPrefix(*body, "@"))
		if err != nil {
			errorf(stderr, "check", "%v", err)
			return 2
		}
	} else {
		bodyBytes = []byte(*body)
	}
	extra := map[string]string{}
	if *session != "" {
		extra["x-airlock-session"] = *session
	}
	for _, hv := range headers {
		k, v, ok := strings.Cut(hv, ":")
		if !ok {
			fmt.Fprintf(stderr, "airlock check: --header %q is not \"name: value\"\n", hv)
			return 2
		}
		extra[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	req := checkRequest(strings.ToUpper(*method), u, *token, extra, bodyBytes, "127.0.0.1:50000")

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		errorf(stderr, "check", "%v", err)
		return 1
	}
	defer conn.Close()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "airlock check: no answer from %s: %v\n", *server, err)
		return 1
	}
	out := describe(resp)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		printDecision(stdout, out)
	}
	if out.Decision == "ALLOW" {
		return exitOK
	}
	return exitNo
}

// checkOutput is what `airlock check` prints.
type checkOutput struct {
	Decision  string            `json:"decision"`
	HTTP      int               `json:"http_status,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Message   string            `json:"message,omitempty"`
	Rules     []string          `json:"rules,omitempty"`
	Operation string            `json:"operation,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Masking   []string          `json:"masking,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

func describe(resp *authv3.CheckResponse) checkOutput {
	if resp.GetStatus().GetCode() == 0 {
		out := checkOutput{Decision: "ALLOW"}
		m := handoff.MetadataFromMap(resp.GetDynamicMetadata().AsMap())
		out.Operation, out.RequestID, out.Rules = m.GCPMethod, m.RequestID, m.Rules
		for _, s := range m.Masking {
			out.Masking = append(out.Masking, s.Policy+"/"+s.Name)
		}
		return out
	}
	d := resp.GetDeniedResponse()
	out := checkOutput{Decision: "DENY", HTTP: int(d.GetStatus().GetCode())}
	var body struct {
		Error struct {
			Message string `json:"message"`
			Details []struct {
				Reason   string            `json:"reason"`
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(d.GetBody()), &body) == nil {
		out.Message = body.Error.Message
		if len(body.Error.Details) > 0 {
			out.Reason = body.Error.Details[0].Reason
			out.Metadata = body.Error.Details[0].Metadata
			md := out.Metadata
			if md["policy"] != "" && md["rule"] != "" {
				out.Rules = []string{md["policy"] + "/" + md["rule"]}
			}
			out.Operation = md["operation"]
			out.RequestID = md["request_id"]
		}
	} else {
		out.Message = d.GetBody()
	}
	if out.Reason == "APPROVAL_REQUIRED" {
		out.Decision = "APPROVAL REQUIRED"
	}
	return out
}

func printDecision(w io.Writer, o checkOutput) {
	fmt.Fprintf(w, "decision:  %s\n", o.Decision)
	if o.Operation != "" {
		fmt.Fprintf(w, "operation: %s\n", o.Operation)
	}
	switch {
	case len(o.Rules) > 0:
		fmt.Fprintf(w, "rules:     %s\n", strings.Join(o.Rules, ", "))
	case o.Decision == "ALLOW" || o.Reason == "POLICY_DENIED":
		fmt.Fprintln(w, "rules:     none: no policy covers this request")
	}
	if o.Reason != "" {
		fmt.Fprintf(w, "reason:    %s (HTTP %d)\n", o.Reason, o.HTTP)
	}
	if o.Message != "" {
		fmt.Fprintf(w, "message:   %s\n", o.Message)
	}
	if id := o.Metadata["approval_id"]; id != "" {
		fmt.Fprintf(w, "approval:  %s  %s\n", id, o.Metadata["approve_url"])
	}
	if len(o.Masking) > 0 {
		fmt.Fprintf(w, "masking:   %s\n", strings.Join(o.Masking, ", "))
	}
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// checkRequest is the CheckRequest Envoy sends for method on u with the
// agent's token, extra headers and body (sent whole), from the peer at
// source: what airlock check and airlock bench send.
func checkRequest(method string, u *url.URL, token string, extra map[string]string, body []byte, source string) *authv3.CheckRequest {
	h := map[string]string{
		":method":    method,
		":path":      u.RequestURI(),
		":authority": u.Host,
		":scheme":    u.Scheme,
	}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	for k, v := range extra {
		h[k] = v
	}
	if len(body) > 0 {
		h["content-length"] = strconv.Itoa(len(body))
		if _, ok := h["content-type"]; !ok {
			h["content-type"] = "application/json"
		}
		h["x-envoy-auth-partial-body"] = "false"
	}
	ip, port, _ := net.SplitHostPort(source)
	p, _ := strconv.ParseUint(port, 10, 32)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sockAddr(ip, uint32(p))},
		Destination: &authv3.AttributeContext_Peer{Address: sockAddr("127.0.0.1", 10000)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       "1",
				Method:   method,
				Headers:  h,
				Path:     u.RequestURI(),
				Host:     u.Host,
				Scheme:   u.Scheme,
				Protocol: "HTTP/1.1",
				Size:     int64(len(body)),
				RawBody:  body,
			},
		},
		// Envoy sets both on every check, empty unless metadata
		// namespaces are configured.
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}}
}
