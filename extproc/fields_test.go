package extproc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/test/standin"
)

// Field rules read JSON: a response in another format (a secret access
// asked as protobuf, an error page, a gRPC message) is refused rather than
// passed with only the detectors run over it. Without field rules the same
// bodies are scanned as text.
func TestFieldRulesNeedJSON(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	fields := metadata(t, handoff.Metadata{Masking: []masking.Rule{{Policy: "p", Name: "secret-payloads", Fields: []string{"payload.data"}}}})
	const payload = `{"payload":{"data":"c2VjcmV0LXZhbHVl"}}`
	for _, tc := range []struct {
		ct      string
		md      bool
		status  int
		contain string
	}{
		{"application/json", true, 200, "[MASKED:secret-payloads]"},
		{"application/x-protobuf", true, 502, "masking rule p/secret-payloads masks fields of a JSON response"},
		{"text/plain", true, 502, "cannot read field by field"},
		{"application/grpc", true, 502, "masks fields of a JSON response"},
		{"text/plain", false, 200, "c2VjcmV0LXZhbHVl"},
	} {
		h := http.Header{"Content-Type": {tc.ct}}
		up := headerUpstream{status: 200, header: h, body: []byte(payload)}
		var md = fields
		if !tc.md {
			md = nil
		}
		res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "GET"), md, up)
		if res.Status != tc.status || !strings.Contains(string(res.Body), tc.contain) {
			t.Fatalf("%s (fields %v): %d %s", tc.ct, tc.md, res.Status, res.Body)
		}
		if res.Status == 502 {
			var e struct{ Error struct{ Message string } }
			if json.Unmarshal(res.Body, &e) != nil || strings.Contains(string(res.Body), "c2VjcmV0") {
				t.Fatalf("%s: refusal %s", tc.ct, res.Body)
			}
		}
	}
}
