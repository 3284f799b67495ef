package gcp

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func newTestRecognizer() *Recognizer {
	return NewRecognizer(DefaultCatalog(), []string{"airlock.example.com", "Gw.Corp.Example."})
}

type want struct {
	method   string // Recognized.Method
	host     string // Recognized.Host, when checked
	path     string // Recognized.Path, when checked
	id       string // Operation.Method
	service  string
	version  string
	project  string
	location string
	resource string
	readOnly bool
	lro      bool
	params   map[string]string // checked keys only
}

func check(t *testing.T, got Recognized, w want) {
	t.Helper()
	op := got.Operation
	if op.Method != w.id {
		t.Fatalf("method id = %q, want %q (op %+v)", op.Method, w.id, op)
	}
	if w.method != "" && got.Method != w.method {
		t.Errorf("effective method = %q, want %q", got.Method, w.method)
	}
	if w.host != "" && got.Host != w.host {
		t.Errorf("host = %q, want %q", got.Host, w.host)
	}
	if w.path != "" && got.Path != w.path {
		t.Errorf("path = %q, want %q", got.Path, w.path)
	}
	if w.service != "" && op.Service != w.service {
		t.Errorf("service = %q, want %q", op.Service, w.service)
	}
	if w.version != "" && op.Version != w.version {
		t.Errorf("version = %q, want %q", op.Version, w.version)
	}
	if op.Project != w.project {
		t.Errorf("project = %q, want %q", op.Project, w.project)
	}
	if op.Location != w.location {
		t.Errorf("location = %q, want %q", op.Location, w.location)
	}
	if op.Resource != w.resource {
		t.Errorf("resource = %q, want %q", op.Resource, w.resource)
	}
	if w.id != "" && op.ReadOnly != w.readOnly {
		t.Errorf("readonly = %v, want %v", op.ReadOnly, w.readOnly)
	}
	if w.id != "" && op.LongRunning != w.lro {
		t.Errorf("long-running = %v, want %v", op.LongRunning, w.lro)
	}
	for k, v := range w.params {
		if op.Params[k] != v {
			t.Errorf("param %s = %q, want %q (params %v)", k, op.Params[k], v, op.Params)
		}
	}
}

const instancePath = "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"
const instanceRes = "projects/acme-prod/zones/us-east1-b/instances/web-1"

// TestDangerousOperations covers every operation listed as dangerous or
// common in the project's GCP notes.
func TestDangerousOperations(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct {
		name         string
		method, host string
		path         string
		w            want
	}{
		{"instances.delete", "DELETE", "compute.googleapis.com", instancePath,
			want{id: "compute.instances.delete", service: "compute", version: "v1", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true,
				params: map[string]string{"project": "acme-prod", "zone": "us-east1-b", "instance": "web-1"}}},
		{"instances.stop", "POST", "compute.googleapis.com", instancePath + "/stop",
			want{id: "compute.instances.stop", version: "v1", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}},
		{"instances.start", "POST", "compute.googleapis.com", instancePath + "/start",
			want{id: "compute.instances.start", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}},
		{"instances.reset", "POST", "compute.googleapis.com", instancePath + "/reset",
			want{id: "compute.instances.reset", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}},
		{"instances.setMetadata", "POST", "compute.googleapis.com", instancePath + "/setMetadata",
			want{id: "compute.instances.setMetadata", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}},
		{"instances.setServiceAccount", "POST", "compute.googleapis.com", instancePath + "/setServiceAccount",
			want{id: "compute.instances.setServiceAccount", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}},
		{"projects.setCommonInstanceMetadata", "POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/setCommonInstanceMetadata",
			want{id: "compute.projects.setCommonInstanceMetadata", project: "acme-prod", resource: "projects/acme-prod", lro: true}},
		{"instances.getSerialPortOutput", "GET", "compute.googleapis.com", instancePath + "/serialPort?port=1",
			want{id: "compute.instances.getSerialPortOutput", project: "acme-prod", location: "us-east1-b", resource: instanceRes, readOnly: true}},
		{"buckets.delete", "DELETE", "storage.googleapis.com", "/storage/v1/b/acme-logs",
			want{id: "storage.buckets.delete", service: "storage", version: "v1", resource: "projects/_/buckets/acme-logs", params: map[string]string{"bucket": "acme-logs"}}},
		{"objects.delete", "DELETE", "storage.googleapis.com", "/storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log",
			want{id: "storage.objects.delete", resource: "projects/_/buckets/acme-logs/objects/2026/11/audit.log",
				params: map[string]string{"bucket": "acme-logs", "object": "2026/11/audit.log"}}},
		{"buckets.setIamPolicy", "PUT", "storage.googleapis.com", "/storage/v1/b/acme-logs/iam",
			want{id: "storage.buckets.setIamPolicy", resource: "projects/_/buckets/acme-logs"}},
		{"secrets.versions.access", "GET", "secretmanager.googleapis.com", "/v1/projects/acme-prod/secrets/db-password/versions/latest:access",
			want{id: "secretmanager.projects.secrets.versions.access", service: "secretmanager", version: "v1", project: "acme-prod",
				resource: "projects/acme-prod/secrets/db-password/versions/latest", readOnly: true,
				params: map[string]string{"name": "projects/acme-prod/secrets/db-password/versions/latest", "secretsId": "db-password"}}},
		{"locations.secrets.versions.access", "GET", "secretmanager.googleapis.com", "/v1/projects/acme-prod/locations/us-east1/secrets/db/versions/3:access",
			want{id: "secretmanager.projects.locations.secrets.versions.access", project: "acme-prod", location: "us-east1",
				resource: "projects/acme-prod/locations/us-east1/secrets/db/versions/3", readOnly: true}},
		{"serviceAccounts.keys.create", "POST", "iam.googleapis.com", "/v1/projects/acme-prod/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com/keys",
			want{id: "iam.projects.serviceAccounts.keys.create", project: "acme-prod",
				resource: "projects/acme-prod/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com"}},
		{"generateAccessToken", "POST", "iamcredentials.googleapis.com", "/v1/projects/-/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com:generateAccessToken",
			want{id: "iamcredentials.projects.serviceAccounts.generateAccessToken", project: "acme-prod",
				resource: "projects/-/serviceAccounts/deployer@acme-prod.iam.gserviceaccount.com"}},
		{"run.services.delete", "DELETE", "run.googleapis.com", "/v2/projects/acme-prod/locations/us-east1/services/api",
			want{id: "run.projects.locations.services.delete", version: "v2", project: "acme-prod", location: "us-east1",
				resource: "projects/acme-prod/locations/us-east1/services/api", lro: true}},
		{"sql.instances.delete", "DELETE", "sqladmin.googleapis.com", "/v1/projects/acme-prod/instances/main-db",
			want{id: "sql.instances.delete", service: "sqladmin", project: "acme-prod", resource: "projects/acme-prod/instances/main-db", lro: true}},
		{"container.locations.clusters.delete", "DELETE", "container.googleapis.com", "/v1/projects/acme-prod/locations/us-east1/clusters/gke-1",
			want{id: "container.projects.locations.clusters.delete", project: "acme-prod", location: "us-east1",
				resource: "projects/acme-prod/locations/us-east1/clusters/gke-1", lro: true}},
		{"container.zones.clusters.delete", "DELETE", "container.googleapis.com", "/v1/projects/acme-prod/zones/us-east1-b/clusters/gke-1",
			want{id: "container.projects.zones.clusters.delete", project: "acme-prod", location: "us-east1-b",
				resource: "projects/acme-prod/zones/us-east1-b/clusters/gke-1", lro: true}},
		{"cloudbuild.builds.create", "POST", "cloudbuild.googleapis.com", "/v1/projects/acme-prod/builds",
			want{id: "cloudbuild.projects.builds.create", project: "acme-prod", resource: "projects/acme-prod", lro: true}},
		{"cloudresourcemanager.projects.delete", "DELETE", "cloudresourcemanager.googleapis.com", "/v3/projects/acme-prod",
			want{id: "cloudresourcemanager.projects.delete", version: "v3", project: "acme-prod", resource: "projects/acme-prod", lro: true}},
		{"apikeys getKeyString", "GET", "apikeys.googleapis.com", "/v2/projects/acme-prod/locations/global/keys/k1/keyString",
			want{id: "apikeys.projects.locations.keys.getKeyString", project: "acme-prod", location: "global",
				resource: "projects/acme-prod/locations/global/keys/k1", readOnly: true}},
		{"getIamPolicy is a read", "POST", "cloudresourcemanager.googleapis.com", "/v3/projects/acme-prod:getIamPolicy",
			want{id: "cloudresourcemanager.projects.getIamPolicy", project: "acme-prod", resource: "projects/acme-prod", readOnly: true}},
		{"setIamPolicy is a write", "POST", "cloudresourcemanager.googleapis.com", "/v3/projects/acme-prod:setIamPolicy",
			want{id: "cloudresourcemanager.projects.setIamPolicy", project: "acme-prod", resource: "projects/acme-prod"}},
		{"instances.list has the zone as resource", "GET", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances",
			want{id: "compute.instances.list", project: "acme-prod", location: "us-east1-b", resource: "projects/acme-prod/zones/us-east1-b", readOnly: true}},
		{"literal beats variable", "GET", "compute.googleapis.com", "/compute/v1/projects/acme-prod/global/images/family/debian-12",
			want{id: "compute.images.getFromFamily", project: "acme-prod", resource: "projects/acme-prod/global/images/family/debian-12", readOnly: true}},
		{"buckets.list takes the project from the query", "GET", "storage.googleapis.com", "/storage/v1/b?project=acme-prod",
			want{id: "storage.buckets.list", project: "acme-prod", readOnly: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: tc.host, Path: tc.path})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			check(t, got, tc.w)
		})
	}
}

func TestHostForms(t *testing.T) {
	r := newTestRecognizer()
	base := want{id: "compute.instances.delete", service: "compute", version: "v1", project: "acme-prod", location: "us-east1-b", resource: instanceRes, lro: true}
	tests := []struct {
		host, path, wantHost string
	}{
		{"compute.googleapis.com", instancePath, "compute.googleapis.com"},
		{"COMPUTE.GoogleApis.com", instancePath, "compute.googleapis.com"},
		{"compute.googleapis.com:443", instancePath, "compute.googleapis.com"},
		{"compute.googleapis.com.", instancePath, "compute.googleapis.com"},
		{"Compute.GoogleAPIs.com.:8443", instancePath, "compute.googleapis.com"},
		{"compute.mtls.googleapis.com", instancePath, "compute.mtls.googleapis.com"},
		{"compute.us-east1.rep.googleapis.com", instancePath, "compute.us-east1.rep.googleapis.com"},
		{"compute.me-central9.rep.googleapis.com", instancePath, "compute.me-central9.rep.googleapis.com"}, // region not in Discovery
		{"www.googleapis.com", instancePath, "www.googleapis.com"},
		{"compute.airlock.example.com", instancePath, "compute.googleapis.com"},
		{"compute.mtls.airlock.example.com:443", instancePath, "compute.mtls.googleapis.com"},
		{"compute.gw.corp.example", instancePath, "compute.googleapis.com"},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: "DELETE", Host: tc.host, Path: tc.path})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			w := base
			w.host = tc.wantHost
			check(t, got, w)
		})
	}

	regional := []struct {
		name, method, host, path string
		w                        want
	}{
		{"secretmanager rep", "GET", "secretmanager.europe-west1.rep.googleapis.com", "/v1/projects/p/locations/europe-west1/secrets/s/versions/1:access",
			want{id: "secretmanager.projects.locations.secrets.versions.access", project: "p", location: "europe-west1",
				resource: "projects/p/locations/europe-west1/secrets/s/versions/1", readOnly: true}},
		{"secretmanager rep, location from host", "GET", "secretmanager.europe-west1.rep.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access",
			want{id: "secretmanager.projects.secrets.versions.access", project: "p", location: "europe-west1",
				resource: "projects/p/secrets/s/versions/1", readOnly: true}},
		{"run locational endpoint", "DELETE", "us-east1-run.googleapis.com", "/v2/projects/p/locations/us-east1/services/s",
			want{id: "run.projects.locations.services.delete", host: "us-east1-run.googleapis.com", project: "p", location: "us-east1",
				resource: "projects/p/locations/us-east1/services/s", lro: true}},
		{"run locational endpoint not in Discovery", "DELETE", "moon-base9-run.googleapis.com", "/v2/projects/p/locations/moon-base9/services/s",
			want{id: "run.projects.locations.services.delete", project: "p", location: "moon-base9",
				resource: "projects/p/locations/moon-base9/services/s", lro: true}},
		{"www storage", "GET", "www.googleapis.com", "/storage/v1/b/bk/o/x",
			want{id: "storage.objects.get", resource: "projects/_/buckets/bk/objects/x", readOnly: true}},
		{"unknown host", "DELETE", "example.com", instancePath, want{}},
		{"unknown googleapis host", "GET", "newthing.googleapis.com", "/v1/things", want{service: "newthing"}},
		{"unknown path on a known host", "GET", "compute.googleapis.com", "/compute/v1/nothing/here", want{service: "compute"}},
	}
	for _, tc := range regional {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: tc.host, Path: tc.path})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			check(t, got, tc.w)
		})
	}
}

func TestStorage(t *testing.T) {
	r := newTestRecognizer()
	obj := "projects/_/buckets/acme-logs/objects/2026/11/audit.log"
	bkt := "projects/_/buckets/acme-logs"
	tests := []struct {
		name, method, host, path string
		headers                  map[string]string
		w                        want
	}{
		{"xml get", "GET", "storage.googleapis.com", "/acme-logs/2026/11/audit.log", nil,
			want{id: "storage.objects.get", resource: obj, readOnly: true, params: map[string]string{"bucket": "acme-logs", "object": "2026/11/audit.log"}}},
		{"xml head", "HEAD", "storage.googleapis.com", "/acme-logs/2026/11/audit.log", nil,
			want{id: "storage.objects.get", resource: obj, readOnly: true}},
		{"xml put", "PUT", "storage.googleapis.com", "/acme-logs/2026/11/audit.log", nil,
			want{id: "storage.objects.insert", resource: obj}},
		{"xml copy", "PUT", "storage.googleapis.com", "/acme-logs/2026/11/audit.log", map[string]string{"x-goog-copy-source": "/other/x"},
			want{id: "storage.objects.copy", resource: obj}},
		{"xml delete", "DELETE", "storage.googleapis.com", "/acme-logs/2026/11/audit.log", nil,
			want{id: "storage.objects.delete", resource: obj}},
		{"xml encoded slash is a slash", "DELETE", "storage.googleapis.com", "/acme-logs/2026%2F11/audit.log", nil,
			want{id: "storage.objects.delete", resource: obj}},
		{"xml abort multipart upload is not a delete", "DELETE", "storage.googleapis.com", "/acme-logs/big.bin?uploadId=abc", nil,
			want{service: "storage", resource: "projects/_/buckets/acme-logs/objects/big.bin"}},
		{"xml resumable start", "POST", "storage.googleapis.com", "/acme-logs/big.bin", map[string]string{"x-goog-resumable": "start"},
			want{id: "storage.objects.insert", resource: "projects/_/buckets/acme-logs/objects/big.bin"}},
		{"xml list", "GET", "storage.googleapis.com", "/acme-logs?prefix=2026/", nil,
			want{id: "storage.objects.list", resource: bkt, readOnly: true}},
		{"xml bucket delete", "DELETE", "storage.googleapis.com", "/acme-logs", nil,
			want{id: "storage.buckets.delete", resource: bkt}},
		{"xml bucket create", "PUT", "storage.googleapis.com", "/acme-logs", map[string]string{"x-goog-project-id": "acme-prod"},
			want{id: "storage.buckets.insert", project: "acme-prod", resource: bkt}},
		{"xml bucket config write", "PUT", "storage.googleapis.com", "/acme-logs?lifecycle", nil,
			want{id: "storage.buckets.patch", resource: bkt}},
		{"xml bucket config read", "GET", "storage.googleapis.com", "/acme-logs?cors", nil,
			want{id: "storage.buckets.get", resource: bkt, readOnly: true}},
		{"xml service list", "GET", "storage.googleapis.com", "/", map[string]string{"x-goog-project-id": "acme-prod"},
			want{id: "storage.buckets.list", project: "acme-prod", readOnly: true}},
		{"bucket host get", "GET", "acme-logs.storage.googleapis.com", "/2026/11/audit.log", nil,
			want{id: "storage.objects.get", resource: obj, readOnly: true}},
		{"bucket host with dots", "DELETE", "logs.acme.com.storage.googleapis.com", "/x", nil,
			want{id: "storage.objects.delete", resource: "projects/_/buckets/logs.acme.com/objects/x"}},
		{"bucket host list", "GET", "acme-logs.storage.googleapis.com", "/", nil,
			want{id: "storage.objects.list", resource: bkt, readOnly: true}},
		{"bucket host via gateway", "GET", "acme-logs.storage.airlock.example.com", "/2026/11/audit.log", nil,
			want{id: "storage.objects.get", host: "acme-logs.storage.googleapis.com", resource: obj, readOnly: true}},
		{"json encoded slash stays in object", "GET", "storage.googleapis.com", "/storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log?alt=media", nil,
			want{id: "storage.objects.get", path: "/storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log", resource: obj, readOnly: true,
				params: map[string]string{"object": "2026/11/audit.log"}}},
		{"json lower-case escape", "GET", "storage.googleapis.com", "/storage/v1/b/acme-logs/o/2026%2f11%2faudit.log", nil,
			want{id: "storage.objects.get", path: "/storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log", resource: obj, readOnly: true}},
		{"json object acl", "DELETE", "storage.googleapis.com", "/storage/v1/b/acme-logs/o/a%2Fb/acl/allUsers", nil,
			want{id: "storage.objectAccessControls.delete", resource: "projects/_/buckets/acme-logs/objects/a/b/acl/allUsers",
				params: map[string]string{"object": "a/b", "entity": "allUsers"}}},
		{"download path", "GET", "storage.googleapis.com", "/download/storage/v1/b/acme-logs/o/a?alt=media", nil,
			want{id: "storage.objects.get", resource: "projects/_/buckets/acme-logs/objects/a", readOnly: true}},
		{"simple upload", "POST", "storage.googleapis.com", "/upload/storage/v1/b/acme-logs/o?uploadType=media&name=a", nil,
			want{id: "storage.objects.insert", resource: bkt}},
		{"resumable upload start", "POST", "storage.googleapis.com", "/upload/storage/v1/b/acme-logs/o?uploadType=resumable", nil,
			want{id: "storage.objects.insert", resource: bkt}},
		{"resumable upload chunk PUT", "PUT", "storage.googleapis.com", "/upload/storage/v1/b/acme-logs/o?uploadType=resumable&upload_id=xyz", nil,
			want{id: "storage.objects.insert", resource: bkt}},
		{"cancelling a resumable upload is not an insert", "DELETE", "storage.googleapis.com", "/upload/storage/v1/b/acme-logs/o?uploadType=resumable&upload_id=xyz", nil,
			want{service: "storage"}},
		{"resumable path", "POST", "storage.googleapis.com", "/resumable/upload/storage/v1/b/acme-logs/o", nil,
			want{id: "storage.objects.insert", resource: bkt}},
		{"legacy www upload", "POST", "www.googleapis.com", "/upload/storage/v1/b/acme-logs/o?uploadType=multipart", nil,
			want{id: "storage.objects.insert", resource: bkt}},
		{"xml invalid bucket name", "DELETE", "storage.googleapis.com", "/Bad%2FBucket/x", nil, want{service: "storage"}},
		{"www serves many APIs", "GET", "www.googleapis.com", "/nothing/v1/x", nil, want{}},
		{"json namespace is never xml", "DELETE", "storage.googleapis.com", "/storage/v1/nothing", nil,
			want{service: "storage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: tc.host, Path: tc.path, Headers: tc.headers})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			check(t, got, tc.w)
		})
	}
}

func TestMethodOverride(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct {
		name, method, path string
		headers            map[string]string
		wantMethod, wantID string
		refused            string // substring of the refusal
	}{
		{"header on POST", "POST", instancePath, map[string]string{"x-http-method-override": "delete"}, "DELETE", "compute.instances.delete", ""},
		{"query on POST", "POST", instancePath + "?%24httpMethod=DELETE", nil, "DELETE", "compute.instances.delete", ""},
		{"header and query agree", "POST", instancePath + "?$httpMethod=DELETE", map[string]string{"x-http-method-override": "DELETE"}, "DELETE", "compute.instances.delete", ""},
		{"header and query disagree", "POST", instancePath + "?$httpMethod=GET", map[string]string{"x-http-method-override": "DELETE"}, "", "", "disagree"},
		{"on GET naming DELETE", "GET", instancePath, map[string]string{"x-http-method-override": "DELETE"}, "", "", "honoured on POST only"},
		{"on GET naming GET", "GET", instancePath, map[string]string{"x-http-method-override": "GET"}, "GET", "compute.instances.get", ""},
		{"two values", "POST", instancePath, map[string]string{"x-http-method-override": "DELETE,GET"}, "", "", "not a single HTTP method"},
		{"empty", "POST", instancePath, map[string]string{"x-http-method-override": " "}, "", "", "empty"},
		{"lower-case method", "delete", instancePath, nil, "DELETE", "compute.instances.delete", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: "compute.googleapis.com", Path: tc.path, Headers: tc.headers})
			if tc.refused != "" {
				assertRefused(t, err, tc.refused)
				return
			}
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			if got.Method != tc.wantMethod || got.Operation.Method != tc.wantID {
				t.Fatalf("got %s %s, want %s %s", got.Method, got.Operation.Method, tc.wantMethod, tc.wantID)
			}
		})
	}
}

func assertRefused(t *testing.T, err error, substr string) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *RequestError containing %q", err, substr)
	}
	if !strings.Contains(re.Msg, substr) {
		t.Fatalf("refusal %q does not contain %q", re.Msg, substr)
	}
}

func TestEncodings(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct {
		name, path, wantPath, wantID, refused string
	}{
		{"unreserved decoded", "/compute/v1/projects/%61cme-prod/zones/us-east1-b/instances/web%2D1", instancePath, "compute.instances.delete", ""},
		{"%41 decoded", "/compute/v1/projects/%41/zones/z/instances/i", "/compute/v1/projects/A/zones/z/instances/i", "compute.instances.delete", ""},
		{"dot-dot", "/compute/v1/projects/other/../acme-prod/zones/z/instances/i", "", "", "dot segment"},
		{"encoded dot-dot", "/compute/v1/projects/x/%2e%2E/zones/z/instances/i", "", "", "dot segment"},
		{"mixed dot", "/compute/v1/projects/x/.%2e/zones/z/instances/i", "", "", "dot segment"},
		{"single dot", "/compute/v1/./projects/p/zones/z/instances/i", "", "", "dot segment"},
		{"double slash", "/compute/v1//projects/p/zones/z/instances/i", "", "", "empty segment"},
		{"trailing slash", instancePath + "/", "", "", "empty segment"},
		{"bad escape", "/compute/v1/projects/p%zz/zones/z/instances/i", "", "", "invalid percent-encoding"},
		{"truncated escape", "/compute/v1/projects/p%2", "", "", "invalid percent-encoding"},
		{"encoded NUL", "/compute/v1/projects/p%00/zones/z/instances/i", "", "", "control character"},
		{"encoded newline", "/compute/v1/projects/p%0A/zones/z/instances/i", "", "", "control character"},
		{"backslash", "/compute/v1/projects/p\\..\\q/zones/z/instances/i", "", "", "not allowed"},
		{"encoded backslash", "/compute/v1/projects/p%5C/zones/z/instances/i", "", "", "backslash"},
		{"relative", "compute/v1/projects/p", "", "", "must start with"},
		{"absolute form", "https://compute.googleapis.com" + instancePath, "", "", "must start with"},
		{"asterisk form", "*", "", "", "must start with"},
		{"space", "/compute/v1/projects/p q", "", "", "not allowed"},
		{"invalid utf-8", "/compute/v1/projects/%C3%28", "", "", "UTF-8"},
		{"encoded slash hiding a dot segment", "/compute/v1/projects/p%2F..%2Fq/zones/z/instances/i", "", "", "dot or empty segment"},
		{"bad query escape", instancePath + "?requestId=%G1", "", "", "invalid percent-encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: "DELETE", Host: "compute.googleapis.com", Path: tc.path})
			if tc.refused != "" {
				assertRefused(t, err, tc.refused)
				return
			}
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			if got.Path != tc.wantPath || got.Operation.Method != tc.wantID {
				t.Fatalf("got %s %s, want %s %s", got.Path, got.Operation.Method, tc.wantPath, tc.wantID)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	r := newTestRecognizer()
	got, err := r.Recognize(Request{Method: "GET", Host: "storage.googleapis.com",
		Path: "/storage/v1/b/bk/o?prefix=a%2Fb+c&fields=items(name)&prefix=d&flag&=x&&"})
	if err != nil {
		t.Fatal(err)
	}
	wantQ := map[string][]string{"prefix": {"a/b c", "d"}, "fields": {"items(name)"}, "flag": {""}, "": {"x"}}
	if !reflect.DeepEqual(got.Query, wantQ) {
		t.Fatalf("query = %v, want %v", got.Query, wantQ)
	}
	if got.Path != "/storage/v1/b/bk/o" {
		t.Fatalf("path = %q", got.Path)
	}
}

func TestGRPC(t *testing.T) {
	r := newTestRecognizer()
	got, err := r.Recognize(Request{Method: "POST", Host: "pubsub.googleapis.com:443", Path: "/google.pubsub.v1.Publisher/Publish",
		Headers: map[string]string{"content-type": "application/grpc+proto"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Operation.Method != "" || got.Operation.Service != "pubsub" || got.Operation.Version != "v1" {
		t.Fatalf("operation = %+v, want unknown pubsub v1", got.Operation)
	}
	// A gRPC content type does not hide a REST call.
	got, err = r.Recognize(Request{Method: "DELETE", Host: "compute.googleapis.com", Path: instancePath,
		Headers: map[string]string{"content-type": "application/grpc"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Operation.Method != "compute.instances.delete" {
		t.Fatalf("REST call with a gRPC content type = %q", got.Operation.Method)
	}
}

func batchBody(boundary string, parts ...string) []byte {
	var b strings.Builder
	for i, p := range parts {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/http\r\nContent-ID: <item%d>\r\n\r\n%s\r\n", boundary, i, p)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String())
}

func TestBatch(t *testing.T) {
	r := newTestRecognizer()
	ct := map[string]string{"content-type": "multipart/mixed; boundary=batch_xyz"}
	body := batchBody("batch_xyz",
		"GET /storage/v1/b/acme-logs/o/a HTTP/1.1\r\n\r\n",
		"DELETE /storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log HTTP/1.1\r\nContent-Type: application/json\r\n\r\n",
		"POST /storage/v1/b/acme-logs/o/x HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\nContent-Length: 0\r\n\r\n",
		"GET https://www.googleapis.com/storage/v1/b/other HTTP/1.1\r\n\r\n",
		"PATCH /storage/v1/b/acme-logs\r\nContent-Type: application/json\r\n\r\n{\"labels\":{}}",
	)
	got, err := r.Recognize(Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1", Headers: ct, Body: body})
	if err != nil {
		t.Fatalf("Recognize: %v", err)
	}
	if got.Parts == nil || got.Operation.Method != "" || got.Operation.Service != "storage" {
		t.Fatalf("batch = %+v", got)
	}
	wantIDs := []string{"storage.objects.get", "storage.objects.delete", "storage.objects.delete", "storage.buckets.get", "storage.buckets.patch"}
	if len(got.Parts) != len(wantIDs) {
		t.Fatalf("got %d parts, want %d", len(got.Parts), len(wantIDs))
	}
	for i, id := range wantIDs {
		if got.Parts[i].Operation.Method != id {
			t.Errorf("part %d = %s, want %s", i, got.Parts[i].Operation.Method, id)
		}
	}
	if res := got.Parts[1].Operation.Resource; res != "projects/_/buckets/acme-logs/objects/2026/11/audit.log" {
		t.Errorf("part 1 resource = %q", res)
	}
	if h := got.Parts[3].Host; h != "www.googleapis.com" {
		t.Errorf("part 3 host = %q", h)
	}
	if m := got.Parts[2].Method; m != "DELETE" {
		t.Errorf("part 2 method = %q, want the override", m)
	}

	// Compute batch on the bare /batch path.
	cb := batchBody("b1", "DELETE "+instancePath+" HTTP/1.1\r\n\r\n")
	got, err = r.Recognize(Request{Method: "POST", Host: "compute.googleapis.com", Path: "/batch/compute/v1",
		Headers: map[string]string{"content-type": "multipart/mixed; boundary=b1"}, Body: cb})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 1 || got.Parts[0].Operation.Method != "compute.instances.delete" || got.Parts[0].Operation.Project != "acme-prod" {
		t.Fatalf("compute batch parts = %+v", got.Parts)
	}

	many := make([]string, MaxBatchParts+1)
	for i := range many {
		many[i] = "GET /storage/v1/b/x HTTP/1.1\r\n\r\n"
	}
	refusals := []struct {
		name    string
		req     Request
		refused string
	}{
		{"partial body", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1", Headers: ct, Body: body, BodyPartial: true}, "larger than"},
		{"no body", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1", Headers: ct}, "no body"},
		{"not multipart", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: map[string]string{"content-type": "application/json"}, Body: []byte("{}")}, "multipart/mixed"},
		{"garbage", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct, Body: []byte("--batch_xyz\r\nnonsense")}, "cannot be parsed"},
		{"empty", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct, Body: []byte("--batch_xyz--\r\n")}, "no parts"},
		{"nested", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct,
			Body: batchBody("batch_xyz", "POST /batch/storage/v1 HTTP/1.1\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z--")}, "another batch"},
		{"too many", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct, Body: batchBody("batch_xyz", many...)}, "more than"},
		{"bad part path", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct,
			Body: batchBody("batch_xyz", "DELETE /storage/v1/b/x/o/../../y HTTP/1.1\r\n\r\n")}, "part 1: the request path"},
		{"wrong part type", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct,
			Body: []byte("--batch_xyz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--batch_xyz--\r\n")}, "application/http"},
		{"host header mismatch", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct,
			Body: batchBody("batch_xyz", "DELETE /compute/v1/projects/p HTTP/1.1\r\nHost: compute.googleapis.com\r\n\r\n")}, "Host header"},
		{"bad request line", Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch", Headers: ct,
			Body: batchBody("batch_xyz", "DELETE\r\n\r\n")}, "request line"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Recognize(tc.req)
			assertRefused(t, err, tc.refused)
		})
	}
}

func TestServiceOfUnknownPaths(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct{ host, path, service string }{
		{"www.googleapis.com", "/nothing/v1/x", ""},
		{"compute.googleapis.com", "/compute/v1/nothing", "compute"},
		{"compute.us-east1.rep.googleapis.com", "/x", "compute"},
		{"newthing.googleapis.com", "/x", "newthing"},
		{"bk.storage.googleapis.com", "/", "storage"},
		{"example.com", "/x", ""},
	}
	for _, tc := range tests {
		got, err := r.Recognize(Request{Method: "OPTIONS", Host: tc.host, Path: tc.path})
		if err != nil {
			t.Fatalf("%s%s: %v", tc.host, tc.path, err)
		}
		if got.Operation.Method != "" || got.Operation.Service != tc.service {
			t.Errorf("%s%s = %+v, want unknown operation of %q", tc.host, tc.path, got.Operation, tc.service)
		}
	}
	for _, p := range []string{"/storage/v1/b/bk/o/a%2F..%2Fb", "/storage/v1/b/bk/o/a%2F%2Fb", "/storage/v1/b/bk/o/%2Fa",
		"/storage/v1/b/bk/o/a%2F%2F", "/storage/v1/b/bk/o/%2F", "/storage/v1/b/bk/o/..%2F", "/storage/v1/b/bk/o/a%2F..%2F"} {
		_, err := r.Recognize(Request{Method: "GET", Host: "storage.googleapis.com", Path: p})
		assertRefused(t, err, "dot or empty segment")
	}
	for _, h := range []string{"compute.googleapis.com:x", "user@compute.googleapis.com", "compute..googleapis.com", "[::1"} {
		_, err := r.Recognize(Request{Method: "GET", Host: h, Path: "/"})
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("host %q accepted", h)
		}
	}
}

func TestRequestErrorText(t *testing.T) {
	err := error(&RequestError{Msg: "x"})
	if err.Error() != "gcp: x" {
		t.Fatalf("Error() = %q", err.Error())
	}
}

// An escape that a front end could decode into a path separator or a custom
// verb separator is refused when decoding it would name another operation;
// inside a Cloud Storage object name it is what the API expects.
func TestEncodedDelimiters(t *testing.T) {
	r := NewRecognizer(DefaultCatalog(), nil)
	tests := []struct {
		method, host, path string
		want               string // operation, or "refused"
	}{
		{"DELETE", "compute.googleapis.com", "/compute/v1/projects/acme-prod%2Fzones%2Fus-east1-b%2Finstances%2Fweb-1", "refused"},
		{"DELETE", "compute.googleapis.com", "/compute%2Fv1/projects/acme-prod/zones/us-east1-b/instances/web-1", "refused"},
		{"GET", "secretmanager.googleapis.com", "/v1/projects/p/secrets/s/versions/1%3Aaccess", "refused"},
		{"GET", "secretmanager.googleapis.com", "/v1/projects/p/secrets/s/versions/1%3aaccess", "refused"},
		{"DELETE", "storage.googleapis.com", "/storage/v1/b/bkt/o/dir%2Fa%3Ab.txt", "storage.objects.delete"},
		{"GET", "storage.googleapis.com", "/storage/v1/b/bkt/o/a%3Aaccess?alt=media", "storage.objects.get"},
		{"GET", "secretmanager.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access", "secretmanager.projects.secrets.versions.access"},
	}
	for _, tt := range tests {
		rec, err := r.Recognize(Request{Method: tt.method, Host: tt.host, Path: tt.path, Headers: map[string]string{}})
		got := rec.Operation.Method
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%s: error %T is not a RequestError", tt.path, err)
			}
			got = "refused"
		}
		if got != tt.want {
			t.Errorf("%s %s%s: got %s, want %s (err %v)", tt.method, tt.host, tt.path, got, tt.want, err)
		}
	}
}

// An object name ending in "/" (a folder placeholder, which gcloud storage
// ls looks up first) is an object like any other.
func TestStorageObjectNameEndingInSlash(t *testing.T) {
	r := newTestRecognizer()
	got, err := r.Recognize(Request{Method: "GET", Host: "storage.googleapis.com", Path: "/storage/v1/b/acme-dev-builds/o/release%2Fv1%2F"})
	if err != nil {
		t.Fatal(err)
	}
	op := got.Operation
	if op.Method != "storage.objects.get" || op.Resource != "projects/_/buckets/acme-dev-builds/objects/release/v1/" || !op.ReadOnly {
		t.Fatalf("operation = %+v", op)
	}
	// Elsewhere a trailing empty segment is still refused.
	_, err = r.Recognize(Request{Method: "GET", Host: "secretmanager.googleapis.com", Path: "/v1/projects/p/secrets/s%2F"})
	assertRefused(t, err, "dot or empty segment")
}

// Cloud SQL Admin v1beta4 is the version gcloud sql and Terraform call: it
// is recognised like v1, with the same method ids.
func TestCloudSQLv1beta4(t *testing.T) {
	r := newTestRecognizer()
	for _, tc := range []struct{ method, path, id string }{
		{"GET", "/sql/v1beta4/projects/acme-dev/instances", "sql.instances.list"},
		{"DELETE", "/sql/v1beta4/projects/acme-dev/instances/orders", "sql.instances.delete"},
		{"DELETE", "/v1/projects/acme-dev/instances/orders", "sql.instances.delete"},
	} {
		got, err := r.Recognize(Request{Method: tc.method, Host: "sqladmin.googleapis.com", Path: tc.path})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if got.Operation.Method != tc.id || got.Operation.Project != "acme-dev" {
			t.Errorf("%s %s = %+v, want %s", tc.method, tc.path, got.Operation, tc.id)
		}
	}
}
