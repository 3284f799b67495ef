package gcp

import (
	"errors"
	"strings"
	"testing"
)

// TestUnrecognized: every request whose operation is unknown says why, in
// words that tell the agent what to send instead; every known one says
// nothing.
func TestUnrecognized(t *testing.T) {
	r := newTestRecognizer()
	grpcWords := []string{"gRPC", "NewRESTClient", `transport="rest"`, "newHttpJsonBuilder()", "HttpJsonTransportProvider", "storage/preferred_api"}
	tests := []struct {
		name, method, host, path string
		headers                  map[string]string
		body                     string
		words                    []string // in Unrecognized; nil: recognised
	}{
		{"non-Google host", "GET", "example.com", "/x", nil, "", []string{`"example.com" is not a Google Cloud API host`}},
		{"metadata server", "GET", "metadata.google.internal", "/computeMetadata/v1/instance/service-accounts/default/token", nil, "", []string{"not a Google Cloud API host"}},
		{"unknown googleapis host", "GET", "newthing.googleapis.com", "/v1/things", nil, "", []string{"does not know an API served at newthing.googleapis.com", "SERVICE.googleapis.com"}},
		{"unknown method", "GET", "compute.googleapis.com", "/compute/v1/nothing/here", nil, "",
			[]string{"airlock knows compute v1 and preview at compute.googleapis.com", "GET /compute/v1/nothing/here", "use a documented REST method"}},
		{"unknown method, several versions", "POST", "cloudresourcemanager.googleapis.com", "/v9/projects/p:undelete", nil, "",
			[]string{"airlock knows cloudresourcemanager v1, v2 and v3 at", "use a documented REST method"}},
		{"unknown method, pre-GA version", "GET", "secretmanager.googleapis.com", "/v1beta2/projects/p/secrets", nil, "",
			[]string{"secretmanager v1 at secretmanager.googleapis.com", "v1beta"}},
		{"unknown method on an alias", "GET", "compute-vialink1.p.googleapis.com", "/compute/v1/nothing", nil, "",
			[]string{"compute v1 and preview at compute-vialink1.p.googleapis.com"}},
		{"unknown method on www", "GET", "www.googleapis.com", "/nothing/v1/x", nil, "", []string{"APIs below their service paths"}},
		{"unknown XML request", "OPTIONS", "storage.googleapis.com", "/acme-prod-data/a", nil, "", []string{"Cloud Storage XML API", "OPTIONS /acme-prod-data/a"}},
		{"XML abort of an upload", "DELETE", "storage.googleapis.com", "/acme-prod-data/a?uploadId=x", nil, "", []string{"Cloud Storage XML API"}},
		{"JSON namespace on storage", "DELETE", "storage.googleapis.com", "/storage/v1/nothing", nil, "", []string{"storage v1 at storage.googleapis.com"}},
		{"grpc", "POST", "secretmanager.googleapis.com", "/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion",
			map[string]string{"content-type": "application/grpc"}, "", append([]string{"/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion"}, grpcWords...)},
		{"grpc+proto", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "application/grpc+proto"}, "", grpcWords},
		{"grpc+json", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "application/grpc+json"}, "", grpcWords},
		{"grpc-web", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "application/grpc-web"}, "", grpcWords},
		{"grpc-web+proto", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "application/grpc-web+proto"}, "", grpcWords},
		{"grpc-web-text", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "application/grpc-web-text"}, "", grpcWords},
		{"grpc, upper case", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject",
			map[string]string{"content-type": "Application/GRPC"}, "", grpcWords},
		{"grpc by $ct", "POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject?$ct=application/grpc", nil, "", grpcWords},
		{"grpc fallback", "POST", "secretmanager.googleapis.com", "/$rpc/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion",
			map[string]string{"content-type": "application/x-protobuf"}, "", append([]string{"(/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion)"}, grpcWords...)},
		{"batch with an unknown part", "POST", "storage.googleapis.com", "/batch/storage/v1",
			map[string]string{"content-type": "multipart/mixed; boundary=b"},
			string(batchBody("b", "GET /storage/v1/b/x HTTP/1.1\r\n\r\n", "DELETE /storage/v1/nothing/here HTTP/1.1\r\n\r\n")),
			[]string{"batch part 2: airlock knows storage v1 at storage.googleapis.com", "DELETE /storage/v1/nothing/here"}},
		{"batch with a part for another host", "POST", "www.googleapis.com", "/batch",
			map[string]string{"content-type": "multipart/mixed; boundary=b"},
			string(batchBody("b", "GET https://example.com/x HTTP/1.1\r\n\r\n")),
			[]string{"batch part 1:", "not a Google Cloud API host"}},

		{"known method", "DELETE", "compute.googleapis.com", instancePath, nil, "", nil},
		{"content-storage JSON delete", "DELETE", "content-storage.googleapis.com", "/storage/v1/b/a/o/b", nil, "", nil},
		{"known XML request", "DELETE", "storage.googleapis.com", "/acme-prod-data/a", nil, "", nil},
		{"batch of known parts", "POST", "storage.googleapis.com", "/batch/storage/v1",
			map[string]string{"content-type": "multipart/mixed; boundary=b"},
			string(batchBody("b", "GET /storage/v1/b/x HTTP/1.1\r\n\r\n")), nil},
		{"REST call with a gRPC content type", "DELETE", "compute.googleapis.com", instancePath, map[string]string{"content-type": "application/grpc"}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: tc.host, Path: tc.path, Headers: tc.headers, Body: []byte(tc.body)})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			uerr := got.UnrecognizedError()
			if tc.words == nil {
				if got.Unrecognized != "" || uerr != nil {
					t.Fatalf("a known operation (%s) says %q", got.Operation.Method, got.Unrecognized)
				}
				return
			}
			if got.Operation.Method != "" && got.Parts == nil {
				t.Fatalf("unknown operation has method %q", got.Operation.Method)
			}
			var re *RequestError
			if !errors.As(uerr, &re) || re.Msg != got.Unrecognized {
				t.Fatalf("UnrecognizedError = %v, want a *RequestError with %q", uerr, got.Unrecognized)
			}
			for _, w := range tc.words {
				if !strings.Contains(got.Unrecognized, w) {
					t.Errorf("%q does not say %q", got.Unrecognized, w)
				}
			}
		})
	}
}

// TestDiscoveryDocuments: the discovery documents client libraries fetch
// are the read-only discovery method, on a service host and on www.
func TestDiscoveryDocuments(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct {
		host, path, api, version string
	}{
		{"compute.googleapis.com", "/$discovery/rest?version=v1", "compute", "v1"},
		{"secretmanager.us-east1.rep.googleapis.com", "/$discovery/rest?version=v1", "secretmanager", "v1"},
		{"storage.googleapis.com", "/$discovery/rest?version=v1", "storage", "v1"},
		{"www.googleapis.com", "/discovery/v1/apis/compute/v1/rest", "compute", "v1"},
	}
	for _, tc := range tests {
		got, err := r.Recognize(Request{Method: "GET", Host: tc.host, Path: tc.path})
		if err != nil {
			t.Fatalf("%s%s: %v", tc.host, tc.path, err)
		}
		op := got.Operation
		if op.Method != "discovery.apis.getRest" || !op.ReadOnly || op.Service != "discovery" || op.Params["api"] != tc.api || op.Params["version"] != tc.version || got.Unrecognized != "" {
			t.Errorf("%s%s = %+v (%q)", tc.host, tc.path, op, got.Unrecognized)
		}
		if op.Resource != "apis/"+tc.api+"/"+tc.version {
			t.Errorf("%s%s resource = %q", tc.host, tc.path, op.Resource)
		}
	}
	for _, bad := range []Request{
		{Method: "POST", Host: "compute.googleapis.com", Path: "/$discovery/rest?version=v1"},
		{Method: "GET", Host: "www.googleapis.com", Path: "/$discovery/rest?version=v1"},
		{Method: "GET", Host: "example.com", Path: "/$discovery/rest?version=v1"},
		{Method: "GET", Host: "compute.googleapis.com", Path: "/$discovery/rpc?version=v1"},
	} {
		got, err := r.Recognize(bad)
		if err != nil || got.Operation.Method != "" || got.Unrecognized == "" {
			t.Errorf("%s %s%s = %q, %v", bad.Method, bad.Host, bad.Path, got.Operation.Method, err)
		}
	}
	_, err := r.Recognize(Request{Method: "GET", Host: "compute.googleapis.com", Path: "/$discovery/rest?version=../x"})
	assertRefused(t, err, "dot or empty segment")
}

// TestBatchPartRange: a Range header inside a batch part cannot be removed
// by the gateway, so the batch is refused.
func TestBatchPartRange(t *testing.T) {
	r := newTestRecognizer()
	_, err := r.Recognize(Request{Method: "POST", Host: "compute.googleapis.com", Path: "/batch/compute/v1",
		Headers: map[string]string{"content-type": "multipart/mixed; boundary=b"},
		Body:    batchBody("b", "GET "+instancePath+"/serialPort HTTP/1.1\r\nRange: bytes=28-\r\n\r\n")})
	assertRefused(t, err, "Range header")
}
