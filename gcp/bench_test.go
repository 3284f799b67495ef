package gcp

import "testing"

var benchLookups = []struct{ host, method, path string }{
	{"compute.googleapis.com", "DELETE", instancePath},
	{"compute.googleapis.com", "POST", instancePath + "/setMetadata"},
	{"compute.us-east1.rep.googleapis.com", "GET", "/compute/v1/projects/p/global/images/family/debian-12"},
	{"storage.googleapis.com", "GET", "/storage/v1/b/acme-logs/o/2026%2F11%2Faudit.log"},
	{"www.googleapis.com", "POST", "/upload/storage/v1/b/acme-logs/o"},
	{"secretmanager.googleapis.com", "GET", "/v1/projects/p/secrets/s/versions/latest:access"},
	{"iam.googleapis.com", "POST", "/v1/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys"},
	{"run.googleapis.com", "DELETE", "/v2/projects/p/locations/us-east1/services/api"},
	{"sqladmin.googleapis.com", "DELETE", "/v1/projects/p/instances/db"},
	{"container.googleapis.com", "GET", "/v1/projects/p/locations/us-east1/clusters"},
	{"bigquery.googleapis.com", "POST", "/bigquery/v2/projects/p/queries"},
	{"cloudresourcemanager.googleapis.com", "POST", "/v3/projects/p:getIamPolicy"},
	{"compute.googleapis.com", "GET", "/compute/v1/no/such/path"},
	{"example.com", "GET", "/x"},
}

// BenchmarkLookup measures the matcher over a mix of APIs.
func BenchmarkLookup(b *testing.B) {
	c := DefaultCatalog()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l := benchLookups[i%len(benchLookups)]
		c.Lookup(l.host, l.method, l.path)
		i++
	}
}

// BenchmarkRecognize measures the whole recognition of a request: host,
// path and query normalisation, override, lookup.
func BenchmarkRecognize(b *testing.B) {
	r := NewRecognizer(DefaultCatalog(), []string{"airlock.example.com"})
	reqs := []Request{
		{Method: "DELETE", Host: "compute.googleapis.com:443", Path: instancePath + "?requestId=abc"},
		{Method: "POST", Host: "compute.airlock.example.com", Path: instancePath, Headers: map[string]string{"x-http-method-override": "DELETE"}},
		{Method: "GET", Host: "storage.googleapis.com", Path: "/storage/v1/b/acme-logs/o/2026%2f11%2Faudit.log?alt=media"},
		{Method: "GET", Host: "storage.googleapis.com", Path: "/acme-logs/2026/11/audit.log"},
		{Method: "GET", Host: "secretmanager.googleapis.com", Path: "/v1/projects/p/secrets/s/versions/latest:access"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.Recognize(reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDefaultCatalogParse measures the one-time parse of the embedded catalog.
func BenchmarkDefaultCatalogParse(b *testing.B) {
	for b.Loop() {
		if _, err := ParseCatalog(catalogData); err != nil {
			b.Fatal(err)
		}
	}
}
