package gcp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
)

// TestCatalogUpToDate regenerates the catalog from the google.golang.org/api
// module pinned in go.mod and fails when the embedded file differs.
func TestCatalogUpToDate(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		t.Fatalf("locate google.golang.org/api (run go mod download): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("google.golang.org/api is not downloaded; run go mod download")
	}
	files, err := catalogen.ModuleDocuments(dir)
	if err != nil {
		t.Fatal(err)
	}
	apis, st, err := catalogen.Generate(files)
	if err != nil {
		t.Fatal(err)
	}
	var fresh bytes.Buffer
	if err := catalogen.EncodeLines(&fresh, apis); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(catalogData))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.Bytes(), embedded) {
		t.Fatalf("catalog.jsonl.gz is stale (first difference at line %d); run: go generate ./gcp", firstDiffLine(fresh.Bytes(), embedded))
	}
	if st.Documents < 300 || st.Methods < 15000 {
		t.Fatalf("generated only %d documents, %d methods", st.Documents, st.Methods)
	}
}

func firstDiffLine(a, b []byte) int {
	sa, sb := bufio.NewScanner(bytes.NewReader(a)), bufio.NewScanner(bytes.NewReader(b))
	sa.Buffer(nil, 64<<20)
	sb.Buffer(nil, 64<<20)
	for line := 1; ; line++ {
		ma, mb := sa.Scan(), sb.Scan()
		if !ma || !mb || sa.Text() != sb.Text() {
			return line
		}
	}
}

func TestCatalogCoverage(t *testing.T) {
	c := DefaultCatalog()
	apis, methods := c.APIs()
	if apis < 300 || methods < 15000 {
		t.Fatalf("catalog has %d APIs, %d methods", apis, methods)
	}
	minimum := []struct {
		api, version string
		n            int
	}{
		{"compute", "v1", 1000},
		{"iam", "v1", 100},
		{"cloudresourcemanager", "v3", 80},
		{"storage", "v1", 80},
		{"sqladmin", "v1", 80},
		{"container", "v1", 60},
		{"run", "v2", 50},
		{"cloudbuild", "v1", 50},
		{"secretmanager", "v1", 30},
	}
	for _, m := range minimum {
		if got := len(c.Methods(m.api, m.version)); got < m.n {
			t.Errorf("%s %s has %d methods, want at least %d", m.api, m.version, got, m.n)
		}
	}
	for _, v := range []string{"v1beta", "v2alpha"} {
		if got := len(c.Methods("compute", v)) + len(c.Methods("run", v)); got != 0 {
			t.Errorf("pre-GA version %s is in the catalog (%d methods)", v, got)
		}
	}
}

func TestLookup(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		host, method, path, id string
	}{
		{"compute.googleapis.com", "DELETE", instancePath, "compute.instances.delete"},
		{"compute.googleapis.com", "GET", instancePath, "compute.instances.get"},
		{"compute.googleapis.com", "HEAD", instancePath, "compute.instances.get"}, // HEAD falls back to GET
		{"compute.googleapis.com", "PUT", instancePath, "compute.instances.update"},
		{"compute.googleapis.com", "POST", instancePath, ""}, // no such method on that path
		{"compute.googleapis.com", "GET", "/compute/v1/projects/p/aggregated/instances", "compute.instances.aggregatedList"},
		{"secretmanager.googleapis.com", "GET", "/v1/projects/p/secrets/s:access", ""}, // verb not served there
		{"secretmanager.googleapis.com", "GET", "/v1/projects/p/secrets/s", "secretmanager.projects.secrets.get"},
		{"secretmanager.googleapis.com", "POST", "/v1/projects/p/secrets/s:addVersion", "secretmanager.projects.secrets.addVersion"},
		{"pubsub.googleapis.com", "POST", "/v1/projects/p/topics/t:publish", "pubsub.projects.topics.publish"},
		{"bigquery.googleapis.com", "POST", "/bigquery/v2/projects/p/queries", "bigquery.jobs.query"},
		{"example.com", "GET", "/", ""},
		{"compute.googleapis.com", "GET", "/", ""},
	}
	for _, tc := range tests {
		op, ok := c.Lookup(tc.host, tc.method, tc.path)
		if ok != (tc.id != "") || op.Method != tc.id {
			t.Errorf("Lookup(%s %s%s) = %q, %v; want %q", tc.method, tc.host, tc.path, op.Method, ok, tc.id)
		}
	}
	if op, _ := c.Lookup("bigquery.googleapis.com", "POST", "/bigquery/v2/projects/p/queries"); op.ReadOnly {
		t.Error("bigquery.jobs.query is marked readonly; SQL may write")
	}
}

func TestReadOnlyRule(t *testing.T) {
	tests := []struct {
		method, id string
		want       bool
	}{
		{"GET", "compute.instances.get", true},
		{"HEAD", "storage.objects.get", true},
		{"GET", "apikeys.projects.locations.keys.getKeyString", true},
		{"DELETE", "compute.instances.delete", false},
		{"PATCH", "storage.buckets.patch", false},
		{"POST", "cloudresourcemanager.projects.getIamPolicy", true},
		{"POST", "cloudresourcemanager.projects.testIamPermissions", true},
		{"POST", "cloudasset.searchAllResources", true},
		{"POST", "compute.instances.list", true},
		{"POST", "firestore.projects.databases.documents.batchGet", true},
		{"POST", "datastore.projects.lookup", true},
		{"POST", "datastore.projects.runQuery", true},
		{"POST", "iam.roles.queryGrantableRoles", true},
		{"POST", "cloudresourcemanager.projects.setIamPolicy", false},
		{"POST", "iamcredentials.projects.serviceAccounts.generateAccessToken", false},
		{"POST", "iamcredentials.projects.serviceAccounts.signJwt", false},
		{"POST", "iam.projects.serviceAccounts.keys.create", false},
		{"POST", "bigquery.jobs.query", false},
		{"POST", "x.getOrCreateToken", false},
		{"POST", "x.listener", false}, // "list" must end a camel-case word
		{"POST", "compute.instances.stop", false},
		{"POST", "compute.zoneOperations.wait", true},
		{"POST", "compute.globalOperations.wait", true},
		{"POST", "run.projects.locations.operations.wait", true},
		{"POST", "run.projects.locations.operations.cancel", false},
		{"POST", "x.things.wait", false}, // wait reads only on an operations collection
		{"POST", "compute.urlMaps.validate", true},
		{"POST", "iam.iamPolicies.lintPolicy", true},
		{"POST", "logging.entries.list", true},
		{"POST", "compute.instanceGroupManagers.listManagedInstances", true},
		{"POST", "compute.backendServices.getHealth", true},
		{"POST", "identitytoolkit.relyingparty.getOobConfirmationCode", false},
		{"POST", "monitoring.projects.notificationChannels.getVerificationCode", false},
		{"POST", "cloudasset.queryAssets", false},
		{"POST", "x.getSettings", true}, // "set" is a word, not a substring
		{"POST", "x.listKeyRings", false},
		{"POST", "x.batchGetSecrets", false},
		{"POST", "x.batchDelete", false},
		{"PUT", "x.things.getIamPolicy", false},
		{"DELETE", "compute.zoneOperations.wait", false},
	}
	for _, tc := range tests {
		if got := catalogen.ReadOnly(tc.method, tc.id); got != tc.want {
			t.Errorf("ReadOnly(%s, %s) = %v, want %v", tc.method, tc.id, got, tc.want)
		}
	}
}

func TestParseCatalogErrors(t *testing.T) {
	if _, err := ParseCatalog([]byte("not gzip")); err == nil || !strings.HasPrefix(err.Error(), "gcp: catalog") {
		t.Fatalf("err = %v, want a gcp: catalog error", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("{\"api\":\"x\",\"version\":\"v1\",\"hosts\":[\"x.googleapis.com\"],\"methods\":[{\"id\":\"x.a\",\"m\":\"GET\",\"t\":[\"v1/a{b}\"]}]}\n"))
	zw.Close()
	if _, err := ParseCatalog(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "x.a") {
		t.Fatalf("err = %v, want a template error naming the method", err)
	}
}
