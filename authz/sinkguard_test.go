package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp"
)

func batchOf(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		fmt.Fprintf(&b, "--bb\r\nContent-Type: application/http\r\nContent-ID: <item%d>\r\n\r\n%s\r\n", i, p)
	}
	b.WriteString("--bb--\r\n")
	return b.Bytes()
}

func multipartUpload(name string) []byte {
	return []byte("--mm\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"name\":\"" + name + "\"}\r\n--mm\r\nContent-Type: text/plain\r\n\r\nhello\r\n--mm--\r\n")
}

// TestSinkGuard runs requests through the real recogniser: every way to
// touch gs://audit-rec/airlock/sessions is refused; the rest of the
// bucket and other buckets are left to policy.
func TestSinkGuard(t *testing.T) {
	rec := gcp.NewRecognizer(gcp.DefaultCatalog(), []string{"airlock.example.com"})
	g := NewSinkGuard("gs://audit-rec/airlock/sessions")
	whole := NewSinkGuard("gs://audit-rec")
	short := NewSinkGuard("gs://audit-rec/rec/")
	const jsonObj = "/storage/v1/b/audit-rec/o/"
	type tc struct {
		name, method, host, path string
		headers                  map[string]string
		body                     string
		partial                  bool
		guard                    *SinkGuard
		refused                  bool
	}
	h := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []tc{
		// JSON API objects.
		{name: "json read", method: "GET", host: "storage.googleapis.com", path: jsonObj + "airlock%2Fsessions%2F2026%2F01%2F02%2Fs%2Fx.jsonl.gz?alt=media", refused: true},
		{name: "download path", method: "GET", host: "storage.googleapis.com", path: "/download" + jsonObj + "airlock%2Fsessions%2Fx?alt=media", refused: true},
		{name: "json delete", method: "DELETE", host: "storage.googleapis.com", path: jsonObj + "airlock%2Fsessions%2Fx", refused: true},
		{name: "json patch metadata", method: "PATCH", host: "storage.googleapis.com", path: jsonObj + "airlock%2Fsessions%2Fx", body: `{"metadata":{}}`, refused: true},
		{name: "json object acl", method: "POST", host: "storage.googleapis.com", path: jsonObj + "airlock%2Fsessions%2Fx/acl", body: `{"entity":"allUsers","role":"READER"}`, refused: true},
		{name: "json object outside the prefix", method: "GET", host: "storage.googleapis.com", path: jsonObj + "public%2Fx?alt=media"},
		{name: "json prefix itself, not a folder", method: "GET", host: "storage.googleapis.com", path: jsonObj + "airlock%2Fsessionsx"},
		{name: "www host", method: "DELETE", host: "www.googleapis.com", path: jsonObj + "airlock%2Fsessions%2Fx", refused: true},
		{name: "gateway domain", method: "DELETE", host: "storage.airlock.example.com", path: jsonObj + "airlock%2Fsessions%2Fx", refused: true},
		// Lists.
		{name: "list whole bucket", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o", refused: true},
		{name: "list parent prefix", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o?prefix=air", refused: true},
		{name: "list inside", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o?prefix=airlock/sessions/2026/", refused: true},
		{name: "list two prefixes", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o?prefix=public/&prefix=x", refused: true},
		{name: "list elsewhere", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o?prefix=public/"},
		{name: "list another bucket", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/other/o"},
		// Bucket-level operations.
		{name: "bucket delete", method: "DELETE", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec", refused: true},
		{name: "bucket patch", method: "PATCH", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec", body: `{"retentionPolicy":null}`, refused: true},
		{name: "bucket get", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec", refused: true},
		{name: "bucket iam", method: "PUT", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/iam", body: `{}`, refused: true},
		{name: "bucket acl", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/acl", refused: true},
		{name: "notifications", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/notificationConfigs", body: `{}`, refused: true},
		{name: "folders", method: "GET", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/managedFolders/public", refused: true},
		{name: "bulk restore", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/bulkRestore", body: `{}`, refused: true},
		{name: "other bucket delete", method: "DELETE", host: "storage.googleapis.com", path: "/storage/v1/b/other"},
		// Copies, rewrites, moves, composes.
		{name: "rewrite into the sink", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/src/o/x/rewriteTo/b/audit-rec/o/y", guard: whole, refused: true},
		{name: "rewrite out of the sink", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/y/rewriteTo/b/dst/o/x", guard: whole, refused: true},
		{name: "copy out of the sink", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/y/copyTo/b/dst/o/x", guard: whole, refused: true},
		{name: "copy between other buckets", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/src/o/y/copyTo/b/dst/o/x", guard: whole},
		{name: "rewrite outside the prefix", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/rewriteTo/b/dst/o/x"},
		{name: "move onto the prefix", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/moveTo/o/rec", guard: short, refused: true},
		{name: "move out of the prefix", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/rec/moveTo/o/public", guard: short, refused: true},
		{name: "move elsewhere", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/moveTo/o/other", guard: short},
		{name: "compose from the sink", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/compose",
			body: `{"sourceObjects":[{"name":"public/a"},{"name":"airlock/sessions/2026/x.jsonl.gz"}]}`, refused: true},
		{name: "compose elsewhere in the bucket", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/compose",
			body: `{"sourceObjects":[{"name":"public/a"}]}`},
		{name: "compose body cut", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o/public/compose",
			body: `{"sourceObjects":[{"name":"public/a"}`, partial: true, refused: true},
		// Uploads.
		{name: "media upload into the sink", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=media&name=airlock/sessions/x", body: "data", refused: true},
		{name: "media upload elsewhere", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=media&name=public/x", body: "data"},
		{name: "multipart upload into the sink", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=multipart",
			headers: h("content-type", "multipart/related; boundary=mm"), body: string(multipartUpload("airlock/sessions/x")), refused: true},
		{name: "multipart upload query name elsewhere, metadata in the sink", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=multipart&name=public/x",
			headers: h("content-type", "multipart/related; boundary=mm"), body: string(multipartUpload("airlock/sessions/x")), refused: true},
		{name: "multipart upload elsewhere", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=multipart",
			headers: h("content-type", "multipart/related; boundary=mm"), body: string(multipartUpload("public/x"))},
		{name: "resumable start into the sink", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=resumable",
			headers: h("content-type", "application/json"), body: `{"name":"airlock/sessions/x"}`, refused: true},
		{name: "upload without a name", method: "POST", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=resumable", refused: true},
		{name: "resumable upload continued", method: "PUT", host: "storage.googleapis.com", path: "/upload/storage/v1/b/audit-rec/o?uploadType=resumable&upload_id=abc", body: "data"},
		{name: "json metadata insert", method: "POST", host: "storage.googleapis.com", path: "/storage/v1/b/audit-rec/o", body: `{"name":"airlock/sessions/x"}`, refused: true},
		// Batches.
		{name: "batch part deletes from the sink", method: "POST", host: "storage.googleapis.com", path: "/batch/storage/v1",
			headers: h("content-type", "multipart/mixed; boundary=bb"),
			body:    string(batchOf("GET /storage/v1/b/other/o/x HTTP/1.1\r\n\r\n", "DELETE /storage/v1/b/audit-rec/o/airlock%2Fsessions%2Fx HTTP/1.1\r\n\r\n")), refused: true},
		{name: "batch elsewhere", method: "POST", host: "storage.googleapis.com", path: "/batch/storage/v1",
			headers: h("content-type", "multipart/mixed; boundary=bb"),
			body:    string(batchOf("DELETE /storage/v1/b/other/o/x HTTP/1.1\r\n\r\n"))},
		// XML API.
		{name: "xml read", method: "GET", host: "storage.googleapis.com", path: "/audit-rec/airlock/sessions/x.jsonl.gz", refused: true},
		{name: "xml bucket as host", method: "DELETE", host: "audit-rec.storage.googleapis.com", path: "/airlock/sessions/x.jsonl.gz", refused: true},
		{name: "xml bucket host via gateway", method: "GET", host: "audit-rec.storage.airlock.example.com", path: "/airlock/sessions/x", refused: true},
		{name: "xml write elsewhere in the bucket", method: "PUT", host: "storage.googleapis.com", path: "/audit-rec/public/x", body: "data"},
		{name: "xml copy source header", method: "PUT", host: "storage.googleapis.com", path: "/other/x", headers: h("x-goog-copy-source", "/audit-rec/airlock/sessions/x.jsonl.gz"), refused: true},
		{name: "xml amz copy source, encoded", method: "PUT", host: "storage.googleapis.com", path: "/other/x", headers: h("x-amz-copy-source", "audit-rec/airlock%2Fsessions%2Fx?versionId=3"), refused: true},
		{name: "xml copy source wholly encoded", method: "PUT", host: "storage.googleapis.com", path: "/other/x", headers: h("x-goog-copy-source", "%2Faudit-rec%2Fairlock%2Fsessions%2Fx"), refused: true},
		{name: "xml copy source badly encoded", method: "PUT", host: "storage.googleapis.com", path: "/other/x", headers: h("x-goog-copy-source", "/audit-rec/airlock%zz"), refused: true},
		{name: "xml copy source elsewhere", method: "PUT", host: "storage.googleapis.com", path: "/other/x", headers: h("x-goog-copy-source", "/audit-rec/public/x")},
		{name: "xml bucket delete", method: "DELETE", host: "storage.googleapis.com", path: "/audit-rec", refused: true},
		{name: "xml bucket config", method: "PUT", host: "storage.googleapis.com", path: "/audit-rec?retentionPolicy", body: "<x/>", refused: true},
		{name: "xml list overlapping", method: "GET", host: "storage.googleapis.com", path: "/audit-rec?prefix=airlock", refused: true},
		{name: "xml list elsewhere", method: "GET", host: "storage.googleapis.com", path: "/audit-rec?prefix=public/"},
		{name: "xml form upload", method: "POST", host: "storage.googleapis.com", path: "/audit-rec",
			headers: h("content-type", "multipart/form-data; boundary=mm"), body: "--mm\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nairlock/sessions/x\r\n--mm--\r\n", refused: true},
		{name: "xml abort upload in the sink", method: "DELETE", host: "storage.googleapis.com", path: "/audit-rec/airlock/sessions/x?uploadId=abc", refused: true},
		// Not recognised: refused when the bucket shows.
		{name: "upper-case bucket", method: "GET", host: "storage.googleapis.com", path: "/AUDIT-REC/airlock/sessions/x", refused: true},
		{name: "grpc names the bucket", method: "POST", host: "storage.googleapis.com", path: "/google.storage.v2.Storage/DeleteObject",
			headers: h("content-type", "application/grpc"), body: "\x00\x00\x00\x00\x20\n\x18projects/_/buckets/audit-rec", refused: true},
		{name: "grpc elsewhere", method: "POST", host: "storage.googleapis.com", path: "/google.storage.v2.Storage/DeleteObject",
			headers: h("content-type", "application/grpc"), body: "\x00\x00\x00\x00\x20\n\x18projects/_/buckets/other"},
		// Other services.
		{name: "compute", method: "DELETE", host: "compute.googleapis.com", path: "/compute/v1/projects/p/zones/z/instances/audit-rec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := tt.headers
			if headers == nil {
				headers = map[string]string{}
			}
			r := Request{Method: tt.method, Host: tt.host, Path: tt.path, Headers: headers, Body: []byte(tt.body), BodyPartial: tt.partial}
			got, err := rec.Recognize(gcp.Request{Method: r.Method, Host: r.Host, Path: r.Path, Headers: r.Headers, Body: r.Body, BodyPartial: r.BodyPartial})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			guard := g
			if tt.guard != nil {
				guard = tt.guard
			}
			why := guard.Check(got, r)
			if (why != "") != tt.refused {
				t.Fatalf("Check = %q, want refused=%v (operation %+v)", why, tt.refused, got.Operation)
			}
		})
	}
	if NewSinkGuard("file:///var/lib/airlock/sessions") != nil {
		t.Fatal("a file:// sink has nothing to guard")
	}
	var none *SinkGuard
	if none.Check(gcp.Recognized{Operation: gcp.Operation{Service: "storage", Params: map[string]string{"bucket": "x"}}}, Request{}) != "" {
		t.Fatal("a nil guard refused")
	}
}

// The guard runs before policy: a policy that allows everything does not
// let an agent at the recordings, and the refusal says why.
func TestSinkGuardBeforePolicy(t *testing.T) {
	set := loadPolicy(t, "name: open\ndefault: allow\n")
	recd := &fakeRecorder{}
	e, err := New(Options{
		Verifier:   fakeVerifier{"good": {Subject: "agent-1"}},
		Recognizer: gcp.NewRecognizer(gcp.DefaultCatalog(), nil),
		Policies:   set,
		Recorder:   recd,
		SinkGuard:  NewSinkGuard("gs://audit-rec/airlock"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res := e.Decide(ctx, req("DELETE", "storage.googleapis.com", "/storage/v1/b/audit-rec/o/airlock%2F2026%2F01%2F02%2Fs%2Fx.jsonl.gz", "good"))
	if res.Outcome != PolicyDenied || res.Refusal == nil || res.Refusal.HTTPStatus != 403 || res.Refusal.Reason != ReasonPolicyDenied ||
		res.Refusal.Metadata["rule"] != RuleSinkGuard || !strings.Contains(res.Refusal.Message, "session recordings") {
		t.Fatalf("result %+v refusal %+v", res, res.Refusal)
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.Refusal.Body(), &body); err != nil || !strings.Contains(body.Error.Message, "gs://audit-rec/airlock/") {
		t.Fatalf("agent reads %q (%v)", body.Error.Message, err)
	}
	if len(recd.seen) != 1 || recd.seen[0].Outcome != PolicyDenied.String() {
		t.Fatalf("recorded %v", recd.seen)
	}
	if res := e.Decide(ctx, req("DELETE", "storage.googleapis.com", "/storage/v1/b/audit-rec/o/public%2Fx", "good")); res.Outcome != Allowed {
		t.Fatalf("outside the sink: %v %+v", res.Outcome, res.Refusal)
	}
}
