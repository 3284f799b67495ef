package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// Cloud Storage object metadata travels in response headers
// (x-goog-meta-*): a key stored there is masked on GET and on HEAD, which
// has no body, through the Envoy stand-in and a running `airlock serve`,
// with fake-gcs-server as Cloud Storage.
func TestObjectMetadataHeadersMasked(t *testing.T) {
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
		InitialObjects: []fakestorage.Object{{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-dev-builds", Name: "deploy/config.txt", ContentType: "text/plain",
				Metadata: map[string]string{"deploy-key": "key=" + secretAPIKey, "owner": "ci"}},
			Content: []byte("api_key: " + secretAPIKey + "\n"),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcsURL, _ := url.Parse(gcs.URL())
	upstream := httptest.NewServer(httputil.NewSingleHostReverseProxy(gcsURL))
	t.Cleanup(upstream.Close)

	iss := identitytest.NewIssuer(t)
	g := startGatewayWith(t, iss, upstream.URL, "", "")
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})

	for _, method := range []string{"GET", "HEAD"} {
		req, err := http.NewRequest(method, g.front.URL+"/acme-dev-builds/deploy/config.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "storage.googleapis.com"
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if strings.Contains(v, secretAPIKey) {
					t.Fatalf("%s: the key reached the agent in %s: %q", method, k, v)
				}
			}
		}
		if got := resp.Header.Get("X-Goog-Meta-Deploy-Key"); got != "key=[MASKED:gcp_api_key]" {
			t.Fatalf("%s: x-goog-meta-deploy-key %q", method, got)
		}
		if got := resp.Header.Get("X-Goog-Meta-Owner"); got != "ci" {
			t.Fatalf("%s: x-goog-meta-owner %q", method, got)
		}
		if method == "GET" && (strings.Contains(string(body), secretAPIKey) || !strings.Contains(string(body), "[MASKED:")) {
			t.Fatalf("GET: body %q", body)
		}
	}
	// The memory budget and its use are on /metrics; once the streams have
	// ended nothing is held.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m := g.a.Get(t, "/metrics")
		if strings.Contains(m, "airlock_extproc_memory_budget_bytes 2.68435456e+08") && strings.Contains(m, "airlock_extproc_memory_in_use_bytes 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory budget metrics:\n%s", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
