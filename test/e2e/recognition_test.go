package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// recordingGoogle answers 200 to everything and records what reached it:
// method, host, path with query, and headers.
type recordingGoogle struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (g *recordingGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.seen = append(g.seen, r.Clone(r.Context()))
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	io.WriteString(w, `{"kind":"storage#object","name":"x"}`)
}

func (g *recordingGoogle) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

func (g *recordingGoogle) last() *http.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) == 0 {
		return nil
	}
	return g.seen[len(g.seen)-1]
}

// send is one agent request through the Envoy stand-in, with headers.
func (g *gateway) send(t *testing.T, method, url, token string, headers map[string]string) (int, string) {
	t.Helper()
	host, path, _ := strings.Cut(strings.TrimPrefix(url, "https://"), "/")
	req, err := http.NewRequest(method, g.front.URL+"/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// recognitionPolicy allows whatever it does not name (a deny-list), and
// names what policy sees of an operation airlock could not recognise.
const recognitionPolicy = `name: deny-list
default: allow
rules:
  - name: no-object-delete
    when: gcp.method == "storage.objects.delete"
    action: deny
  - name: unknown-operation-reached-policy
    when: gcp.method == ""
    action: deny
    message: This policy saw an operation airlock could not recognise.
`

// TestUnrecognisedOperationsThroughTheGateway drives the built binary
// through the Envoy stand-in: a gRPC call is refused before policy with a
// message naming the REST transports, what airlock knows is decided by
// policy, no range and no query credential reaches Google, and with
// authz.unrecognised: policy the gRPC call is the policy's to decide.
func TestUnrecognisedOperationsThroughTheGateway(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	const grpcCall = "https://secretmanager.googleapis.com/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion"
	grpcHeaders := map[string]string{"Content-Type": "application/grpc", "TE": "trailers"}

	t.Run("refuse", func(t *testing.T) {
		google := &recordingGoogle{}
		upstream := httptest.NewServer(google)
		t.Cleanup(upstream.Close)
		g := startGatewayWith(t, iss, upstream.URL, writePolicy(t, t.TempDir(), "p.yaml", recognitionPolicy), "")

		for _, ct := range []string{"application/grpc", "application/grpc+proto", "application/grpc-web", "application/grpc-web-text"} {
			code, body := g.send(t, "POST", grpcCall, tok, map[string]string{"Content-Type": ct})
			e := parseRefusal(t, []byte(body))
			if code != 400 || e.Error.Status != "INVALID_ARGUMENT" || e.Error.Details[0].Reason != "INVALID_REQUEST" {
				t.Fatalf("%s: %d %s", ct, code, body)
			}
			for _, w := range []string{"airlock: refused before policy: gRPC calls (/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion)",
				"NewRESTClient", `transport=\"rest\"`, "newHttpJsonBuilder()", "storage/preferred_api"} {
				if !strings.Contains(body, w) {
					t.Errorf("%s: the agent's refusal lacks %q: %s", ct, w, body)
				}
			}
		}
		code, body := g.send(t, "GET", "https://storage.googleapis.com/storage/v2/b/acme-prod-data/o/x", tok, nil)
		if e := parseRefusal(t, []byte(body)); code != 400 || !strings.Contains(e.Error.Message, "airlock knows storage v1 at storage.googleapis.com") ||
			!strings.Contains(e.Error.Message, "use a documented REST method") {
			t.Fatalf("unknown method: %d %s", code, body)
		}
		code, body = g.send(t, "DELETE", "https://content-storage.googleapis.com/storage/v1/b/acme-prod-data/o/x", tok, nil)
		if e := parseRefusal(t, []byte(body)); code != 403 || e.Error.Details[0].Metadata["rule"] != "no-object-delete" {
			t.Fatalf("content-storage delete: %d %s", code, body)
		}
		code, body = g.send(t, "GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances/web-1/serialPort?start=28", tok, nil)
		if e := parseRefusal(t, []byte(body)); code != 400 || !strings.Contains(e.Error.Message, "omit start") {
			t.Fatalf("serial port slice: %d %s", code, body)
		}
		code, body = g.send(t, "GET", "https://secretmanager.googleapis.com/v1/projects/acme-dev/secrets/db/versions/1:access?%24alt=proto", tok, nil)
		if e := parseRefusal(t, []byte(body)); code != 400 || !strings.Contains(e.Error.Message, "alt=json") {
			t.Fatalf("alt=proto: %d %s", code, body)
		}
		code, body = g.send(t, "GET", "https://storage.googleapis.com/storage/v1/b/acme-dev/o/k?alt=media&%61ccess_token=ya29.agent", tok, nil)
		if e := parseRefusal(t, []byte(body)); code != 400 || !strings.Contains(e.Error.Message, "Authorization header") {
			t.Fatalf("escaped access_token: %d %s", code, body)
		}
		if n := google.count(); n != 0 {
			t.Fatalf("%d refused requests reached Google: %v", n, google.last().URL)
		}

		// An allowed download reaches Google whole, without the agent's
		// query credentials.
		code, body = g.send(t, "GET", "https://storage.googleapis.com/storage/v1/b/acme-dev-keys/o/key.pem?alt=media&access_token=ya29.agent&oauth_token=ya29.agent2", tok,
			map[string]string{"Range": "bytes=28-", "If-Range": `"etag-1"`})
		if code != 200 {
			t.Fatalf("download: %d %s", code, body)
		}
		seen := google.last()
		if seen == nil {
			t.Fatal("the download did not reach Google")
		}
		if seen.Header.Get("Range") != "" || seen.Header.Get("If-Range") != "" {
			t.Errorf("a range reached Google: Range %q If-Range %q", seen.Header.Get("Range"), seen.Header.Get("If-Range"))
		}
		if q := seen.URL.RawQuery; strings.Contains(q, "ya29") || !strings.Contains(q, "alt=media") {
			t.Errorf("Google saw the query %q", q)
		}
		if a := seen.Header.Get("Authorization"); strings.Contains(a, tok[len(tok)-20:]) {
			t.Errorf("the agent's token reached Google")
		}
	})

	t.Run("policy", func(t *testing.T) {
		google := &recordingGoogle{}
		upstream := httptest.NewServer(google)
		t.Cleanup(upstream.Close)
		g := startGatewayWith(t, iss, upstream.URL, writePolicy(t, t.TempDir(), "p.yaml", recognitionPolicy), "authz: {unrecognised: policy}\n")
		code, body := g.send(t, "POST", grpcCall, tok, grpcHeaders)
		e := parseRefusal(t, []byte(body))
		if code != 403 || e.Error.Details[0].Reason != "POLICY_DENIED" || e.Error.Details[0].Metadata["rule"] != "unknown-operation-reached-policy" ||
			e.Error.Details[0].Metadata["operation"] != "" {
			t.Fatalf("with authz.unrecognised: policy the gRPC call is the policy's: %d %s", code, body)
		}
		if google.count() != 0 {
			t.Fatal("a denied request reached Google")
		}
	})
}
