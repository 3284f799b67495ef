package extproc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/test/standin"
)

// A PEM private key as it fits in a header value: its line breaks escaped.
const headerPEM = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4\n-----END PRIVATE KEY-----\n`

// objectHeaders are the headers of a Cloud Storage XML API object read
// whose custom metadata (x-goog-meta-*) holds secrets.
func objectHeaders() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", "5")
	h.Set("Etag", `"CJ+F3cPfy4kDEAE="`)
	h.Set("X-Goog-Generation", "4111111111111111") // passes a card's checksum
	h.Set("X-Goog-Hash", "crc32c=n03x6A==,md5=XrY7u+Ae7tCTyyK7j1rNww==")
	h.Set("X-Goog-Meta-Deploy-Key", "key="+testAPIKey)
	h.Set("X-Goog-Meta-Signing-Key", headerPEM)
	h.Set("X-Goog-Meta-Owner", "alice@example.com")
	h.Set("X-Goog-Meta-"+testAPIKey, "the key is the name")
	h["X-Goog-Meta-Tokens"] = []string{"first", "ya29.a0AfB_byDq9pX3vN7mK2lJ8hG5fD4sA1zX6cV0bN9mQ8wE7rT6yU5iO4pL3kJ2hG1fD0sA", "last"}
	return h
}

type headerUpstream struct {
	status int
	header http.Header
	body   []byte
}

func (u headerUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range u.header {
		w.Header()[k] = v
	}
	w.WriteHeader(u.status)
	_, _ = w.Write(u.body)
}

// noSecretHeader fails when a secret of objectHeaders reached the agent.
func noSecretHeader(t *testing.T, h http.Header) {
	t.Helper()
	for k, vs := range h {
		for _, s := range []string{testAPIKey, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw", "ya29.a0AfB"} {
			if strings.Contains(strings.ToLower(k), strings.ToLower(s)) {
				t.Errorf("secret in header name %s", k)
			}
			for _, v := range vs {
				if strings.Contains(v, s) {
					t.Errorf("secret in %s: %q", k, v)
				}
			}
		}
	}
}

// Secrets in response headers (Cloud Storage object metadata) are masked
// on GET and on HEAD, which has no body; the headers Google computes are
// left alone, and every value of a name is kept in order.
func TestResponseHeadersMasked(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	for _, method := range []string{"GET", "HEAD"} {
		up := headerUpstream{status: 200, header: objectHeaders(), body: []byte("hello")}
		res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, method), nil, up)
		if res.Status != 200 || res.LocalReply || res.Reset {
			t.Fatalf("%s: status %d details %q", method, res.Status, res.Details)
		}
		noSecretHeader(t, res.Header)
		if got := res.Header.Get("X-Goog-Meta-Deploy-Key"); got != "key=[MASKED:gcp_api_key]" {
			t.Errorf("%s: deploy key %q", method, got)
		}
		if got := res.Header.Get("X-Goog-Meta-Signing-Key"); !strings.Contains(got, "[MASKED:private_key]") {
			t.Errorf("%s: signing key %q", method, got)
		}
		if got := res.Header.Values("X-Goog-Meta-Tokens"); strings.Join(got, "|") != "first|[MASKED:oauth_token]|last" {
			t.Errorf("%s: tokens %q", method, got)
		}
		for _, k := range []string{"Etag", "X-Goog-Generation", "X-Goog-Hash", "Content-Type", "X-Goog-Meta-Owner"} {
			if got, want := res.Header.Get(k), objectHeaders().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q untouched", method, k, got, want)
			}
		}
		if method == "GET" && string(res.Body) != "hello" {
			t.Errorf("body %q", res.Body)
		}
	}
}

// The masking rules ext_authz selected apply to headers too: e-mail
// addresses are masked when a policy asks.
func TestResponseHeadersPolicyProfile(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	md := metadata(t, handoff.Metadata{Masking: []masking.Rule{{Name: "pii", Detectors: []string{"email"}}}})
	up := headerUpstream{status: 200, header: objectHeaders(), body: []byte("hello")}
	res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "HEAD"), md, up)
	if got := res.Header.Get("X-Goog-Meta-Owner"); got != "[MASKED:email]" {
		t.Fatalf("owner %q (status %d)", got, res.Status)
	}
}

// Media types the operator passes uninspected, bodiless statuses and error
// responses still have their headers masked.
func TestResponseHeadersMaskedWithoutBodyInspection(t *testing.T) {
	conn := startServer(t, extproc.Options{PassContentTypes: []string{"video/"}})
	for _, tc := range []struct {
		status int
		ct     string
	}{{200, "video/mp4"}, {204, "text/plain"}, {304, "text/plain"}, {403, "application/json"}} {
		h := objectHeaders()
		h.Set("Content-Type", tc.ct)
		h.Del("Content-Length")
		up := headerUpstream{status: tc.status, header: h, body: []byte(`{"error":{}}`)}
		if tc.status == 204 || tc.status == 304 {
			up.body = nil
		}
		res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "GET"), nil, up)
		if res.Status != tc.status {
			t.Fatalf("%d %s: status %d", tc.status, tc.ct, res.Status)
		}
		noSecretHeader(t, res.Header)
	}
}

// A secret in a header Envoy does not let ext_proc rewrite refuses the
// response before any byte.
func TestResponseHeaderUnrewritable(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	h := http.Header{"Content-Type": {"text/plain"}, "X-Envoy-Upstream-Note": {"k=" + testAPIKey}}
	res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "HEAD"), nil, headerUpstream{status: 200, header: h})
	var e struct{ Error struct{ Message string } }
	if res.Status != 502 || json.Unmarshal(res.Body, &e) != nil || !strings.Contains(e.Error.Message, "x-envoy-upstream-note") {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	noSecretHeader(t, res.Header)
}

// In BUFFERED mode the header mutation of the headers reply applies too.
func TestResponseHeadersMaskedBuffered(t *testing.T) {
	conn := startServer(t, extproc.Options{BodyMode: extproc.BodyModeBuffered})
	cfg := config(0)
	cfg.ProcessingMode.ResponseBodyMode = filterv3.ProcessingMode_BUFFERED
	up := headerUpstream{status: 200, header: objectHeaders(), body: []byte("hello")}
	res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), get(t, "GET"), nil, up)
	if res.Status != 200 || string(res.Body) != "hello" {
		t.Fatalf("%d %q", res.Status, res.Body)
	}
	noSecretHeader(t, res.Header)
}

// The recorder gets the headers as the agent received them.
func TestRecordedHeadersMasked(t *testing.T) {
	rec := &headerRecorder{}
	conn := startServer(t, extproc.Options{Recorder: rec})
	up := headerUpstream{status: 200, header: objectHeaders(), body: []byte("hello")}
	standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "HEAD"), nil, up)
	if rec.headers == nil {
		t.Fatal("nothing recorded")
	}
	for k, v := range rec.headers {
		if strings.Contains(k+v, testAPIKey) || strings.Contains(v, "ya29.") {
			t.Fatalf("recorded %s: %q", k, v)
		}
	}
	if rec.headers["x-goog-meta-deploy-key"] != "key=[MASKED:gcp_api_key]" {
		t.Fatalf("recorded %v", rec.headers)
	}
}

type headerRecorder struct{ headers map[string]string }

func (r *headerRecorder) RecordRequestHeaders(context.Context, handoff.Metadata, map[string]string) error {
	return nil
}

func (r *headerRecorder) RecordResponse(_ context.Context, _ handoff.Metadata, _ int, h map[string]string, _ []byte, _ int64) error {
	r.headers = h
	return nil
}

// Binary headers (-bin, base64) are masked in their text and in the bytes
// they decode to: a google.rpc.Status in grpc-status-details-bin keeps
// parsing with its message masked.
func TestBinaryHeadersMasked(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	details, err := proto.Marshal(&statuspb.Status{Code: 3, Message: "bad key " + testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/grpc"}}
	h.Set("Grpc-Status-Details-Bin", base64.RawStdEncoding.EncodeToString(details))
	h.Set("X-Trace-Bin", testAPIKey)
	res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "HEAD"), nil, headerUpstream{status: 200, header: h})
	if got := res.Header.Get("X-Trace-Bin"); got != "[MASKED:gcp_api_key]" {
		t.Fatalf("x-trace-bin %q", got)
	}
	raw, err := base64.RawStdEncoding.DecodeString(res.Header.Get("Grpc-Status-Details-Bin"))
	var st statuspb.Status
	if err != nil || proto.Unmarshal(raw, &st) != nil || st.Message != "bad key [MASKED:gcp_api_key]" || st.Code != 3 {
		t.Fatalf("grpc-status-details-bin: %v %v", err, &st)
	}
}
