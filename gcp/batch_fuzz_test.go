package gcp

import (
	"strings"
	"testing"
)

// FuzzBatch feeds arbitrary multipart bodies to the batch parser: it never
// panics, refuses with a *RequestError, never accepts more than
// MaxBatchParts parts or a nested batch, and every part it accepts is a
// recognised request (or says why not).
func FuzzBatch(f *testing.F) {
	f.Add("b", string(batchBody("b", "GET /storage/v1/b/acme-logs/o/a HTTP/1.1\r\n\r\n")))
	f.Add("batch_xyz", string(batchBody("batch_xyz",
		"DELETE /storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log HTTP/1.1\r\nContent-Type: application/json\r\n\r\n",
		"POST /storage/v1/b/acme-logs/o/x HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\nContent-Length: 0\r\n\r\n",
		"GET https://www.googleapis.com/storage/v1/b/other HTTP/1.1\r\n\r\n",
		"PATCH /storage/v1/b/acme-logs\r\nContent-Type: application/json\r\n\r\n{\"labels\":{}}")))
	f.Add("===1===", string(batchBody("===1===", "DELETE /compute/v1/projects/p/zones/z/instances/i HTTP/1.1\r\nHost: compute.googleapis.com\r\n\r\n")))
	f.Add("b", string(batchBody("b", "POST /batch/storage/v1 HTTP/1.1\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c--")))
	f.Add("b", string(batchBody("b", "GET /storage/v1/b/a/o/b?alt=proto HTTP/1.1\r\n\r\n")))
	f.Add("b", string(batchBody("b", "GET /compute/v1/projects/p/zones/z/instances/i/serialPort HTTP/1.1\r\nRange: bytes=28-\r\n\r\n")))
	f.Add("b", string(batchBody("b", "GET https://example.com/x HTTP/1.1\r\n\r\n", "DELETE /storage/v9/x HTTP/1.1\r\n\r\n")))
	f.Add("b", "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\nR0VUIC8=\r\n--b--\r\n")
	f.Add("b", "--b\r\nContent-Type: application/http\r\n\r\n\r\n\r\n--b--")
	r := NewRecognizer(DefaultCatalog(), []string{"airlock.example.com"})
	f.Fuzz(func(t *testing.T, boundary, body string) {
		ct := "multipart/mixed; boundary=" + boundary
		if strings.ContainsAny(boundary, " ;=\"") {
			ct = "multipart/mixed; boundary=\"" + strings.ReplaceAll(boundary, "\"", "") + "\""
		}
		for _, host := range []string{"storage.googleapis.com", "www.googleapis.com"} {
			got, err := r.Recognize(Request{Method: "POST", Host: host, Path: "/batch/storage/v1",
				Headers: map[string]string{"content-type": ct}, Body: []byte(body)})
			if err != nil {
				if _, ok := err.(*RequestError); !ok {
					t.Fatalf("error %T is not a *RequestError: %v", err, err)
				}
				continue
			}
			if got.Parts == nil {
				t.Fatal("a batch was accepted without parts")
			}
			if len(got.Parts) > MaxBatchParts {
				t.Fatalf("%d parts accepted", len(got.Parts))
			}
			checkRecognized(t, "/batch/storage/v1", got)
			for _, p := range got.Parts {
				checkNormalized(t, p.Path, p.Path)
				if p.Host == "" {
					t.Fatal("a part without a host")
				}
			}
		}
	})
}
