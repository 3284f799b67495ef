package gcp

import (
	"testing"
)

// TestHostAliases: every other name of a Google API host is read as the
// API's own host, and the Cloud Storage XML API is recognised on the
// aliases that serve it.
func TestHostAliases(t *testing.T) {
	r := newTestRecognizer()
	const secret = "/v1/projects/acme-prod/secrets/db/versions/latest:access"
	const objDelete = "/storage/v1/b/acme-prod-data/o/dumps%2Fdb.sql"
	objRes := "projects/_/buckets/acme-prod-data/objects/dumps/db.sql"
	tests := []struct {
		name, method, host, path string
		w                        want
	}{
		// Cloud Storage JSON API on content-storage.googleapis.com (the
		// host of an object's mediaLink).
		{"content-storage JSON delete", "DELETE", "content-storage.googleapis.com", objDelete,
			want{id: "storage.objects.delete", service: "storage", resource: objRes}},
		{"content-storage JSON download", "GET", "content-storage.googleapis.com", "/download/storage/v1/b/acme-prod-data/o/a?alt=media",
			want{id: "storage.objects.get", resource: "projects/_/buckets/acme-prod-data/objects/a", readOnly: true}},
		{"content-storage bucket IAM", "PUT", "content-storage.googleapis.com", "/storage/v1/b/acme-prod-data/iam",
			want{id: "storage.buckets.setIamPolicy", resource: "projects/_/buckets/acme-prod-data"}},
		// The XML API upload and download endpoints, path-style and
		// bucket-as-host.
		{"storage-upload XML put", "PUT", "storage-upload.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.insert", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"storage-download XML get", "GET", "storage-download.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.get", resource: "projects/_/buckets/acme-prod-data/objects/a.txt", readOnly: true}},
		{"storage-download XML delete", "DELETE", "storage-download.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.delete", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"bucket on storage-upload", "DELETE", "acme-prod-data.storage-upload.googleapis.com", "/a.txt",
			want{id: "storage.objects.delete", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"bucket on storage-download", "GET", "acme-prod-data.storage-download.googleapis.com", "/a.txt",
			want{id: "storage.objects.get", resource: "projects/_/buckets/acme-prod-data/objects/a.txt", readOnly: true}},
		{"storage-upload JSON upload", "POST", "storage-upload.googleapis.com", "/upload/storage/v1/b/acme-prod-data/o?uploadType=media&name=a",
			want{id: "storage.objects.insert", resource: "projects/_/buckets/acme-prod-data"}},
		// mTLS for an API whose Discovery document lists no mtlsRootUrl,
		// and for one that does.
		{"mtls of any service", "DELETE", "storage.mtls.googleapis.com", objDelete,
			want{id: "storage.objects.delete", resource: objRes}},
		{"mtls secret manager", "GET", "secretmanager.mtls.googleapis.com", secret,
			want{id: "secretmanager.projects.secrets.versions.access", project: "acme-prod", readOnly: true,
				resource: "projects/acme-prod/secrets/db/versions/latest"}},
		// Regional endpoints, listed in Discovery or not, public and
		// Private Service Connect forms.
		{"regional rep", "GET", "secretmanager.me-central9.rep.googleapis.com", secret,
			want{id: "secretmanager.projects.secrets.versions.access", project: "acme-prod", location: "me-central9", readOnly: true,
				resource: "projects/acme-prod/secrets/db/versions/latest"}},
		{"regional rep, private", "GET", "secretmanager.us-east1.p.rep.googleapis.com", secret,
			want{id: "secretmanager.projects.secrets.versions.access", project: "acme-prod", location: "us-east1", readOnly: true,
				resource: "projects/acme-prod/secrets/db/versions/latest"}},
		{"regional storage XML", "DELETE", "storage.us-east1.rep.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.delete", location: "us-east1", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"regional storage XML, private", "DELETE", "storage.us-east1.p.rep.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.delete", location: "us-east1", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"locational endpoint", "DELETE", "europe-west4-run.googleapis.com", "/v2/projects/acme-prod/locations/europe-west4/services/api",
			want{id: "run.projects.locations.services.delete", project: "acme-prod", location: "europe-west4", lro: true,
				resource: "projects/acme-prod/locations/europe-west4/services/api"}},
		// Private Service Connect endpoints for global APIs:
		// SERVICE-ENDPOINT.p.googleapis.com.
		{"psc compute", "DELETE", "compute-vialink1.p.googleapis.com", instancePath,
			want{id: "compute.instances.delete", project: "acme-prod", location: "us-east1-b", lro: true, resource: instanceRes}},
		{"psc secret manager", "GET", "secretmanager-adsteam.p.googleapis.com", secret,
			want{id: "secretmanager.projects.secrets.versions.access", project: "acme-prod", readOnly: true,
				resource: "projects/acme-prod/secrets/db/versions/latest"}},
		{"psc storage JSON", "DELETE", "storage-vialink1.p.googleapis.com", objDelete,
			want{id: "storage.objects.delete", resource: objRes}},
		{"psc storage XML", "DELETE", "storage-vialink1.p.googleapis.com", "/acme-prod-data/a.txt",
			want{id: "storage.objects.delete", resource: "projects/_/buckets/acme-prod-data/objects/a.txt"}},
		{"psc legacy www", "DELETE", "www-vialink1.p.googleapis.com", instancePath,
			want{id: "compute.instances.delete", project: "acme-prod", location: "us-east1-b", lro: true, resource: instanceRes}},
		{"psc via gateway domain", "DELETE", "compute-vialink1.p.airlock.example.com", instancePath,
			want{id: "compute.instances.delete", host: "compute-vialink1.p.googleapis.com", project: "acme-prod", location: "us-east1-b", lro: true, resource: instanceRes}},
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

	// Names that are no alias stay unknown.
	for _, host := range []string{
		"content-storage.googleapis.com", // serves the JSON API, not the XML API
		"compute-.p.googleapis.com",
		"-vialink1.p.googleapis.com",
		"compute-Via.p.googleapis.com",
		"compute-1abc.p.googleapis.com",                      // an endpoint name starts with a letter
		"compute-abcdefghijklmnopqrstu.p.googleapis.com",     // longer than 20
		"a.compute-vialink1.p.googleapis.com",                // no bucket-as-host form documented
		"compute.us-east1.x.rep.googleapis.com",              // too many labels
		"compute.mtls.mtls.googleapis.com",                   // not a host form
		"us-run.googleapis.com",                              // "us" is no region of a locational endpoint
		"acme-prod-data.storage.mtls.googleapis.com",         // no bucket-as-host on mTLS
		"storage.googleapis.com.evil.example",                // not Google's
		"storage-vialink1.p.googleapis.com.evil.example",     // not Google's
		"content-storage.googleapis.com.evil.example",        // not Google's
		"acme-prod-data.content-storage.googleapis.com",      // no bucket-as-host there
		"acme-prod-data.storage.us-east1.rep.googleapis.com", // no bucket-as-host on regional
	} {
		got, err := r.Recognize(Request{Method: "DELETE", Host: host, Path: "/acme-prod-data/a.txt"})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got.Operation.Method != "" {
			t.Errorf("%s: DELETE /acme-prod-data/a.txt recognised as %s", host, got.Operation.Method)
		}
	}
}

// TestXMLProjectHeader: Google reads x-goog-project-id only to create or
// list buckets, so it names the project there and nowhere else.
func TestXMLProjectHeader(t *testing.T) {
	r := newTestRecognizer()
	dev := map[string]string{"x-goog-project-id": "acme-dev"}
	tests := []struct {
		name, method, host, path string
		headers                  map[string]string
		id, project              string
	}{
		{"bucket create", "PUT", "storage.googleapis.com", "/acme-dev-data", dev, "storage.buckets.insert", "acme-dev"},
		{"bucket list", "GET", "storage.googleapis.com", "/", dev, "storage.buckets.list", "acme-dev"},
		{"bucket list, HEAD", "HEAD", "storage.googleapis.com", "/", dev, "storage.buckets.list", "acme-dev"},
		{"object delete", "DELETE", "storage.googleapis.com", "/acme-prod-data/db.sql", dev, "storage.objects.delete", ""},
		{"object delete, bucket host", "DELETE", "acme-prod-data.storage.googleapis.com", "/db.sql", dev, "storage.objects.delete", ""},
		{"object read", "GET", "storage.googleapis.com", "/acme-prod-data/db.sql", dev, "storage.objects.get", ""},
		{"object write", "PUT", "storage.googleapis.com", "/acme-prod-data/db.sql", dev, "storage.objects.insert", ""},
		{"object copy", "PUT", "storage.googleapis.com", "/acme-prod-data/db.sql", map[string]string{"x-goog-project-id": "acme-dev", "x-goog-copy-source": "/a/b"}, "storage.objects.copy", ""},
		{"object acl", "PUT", "storage.googleapis.com", "/acme-prod-data/db.sql?acl", dev, "storage.objects.patch", ""},
		{"bucket delete", "DELETE", "storage.googleapis.com", "/acme-prod-data", dev, "storage.buckets.delete", ""},
		{"bucket config", "PUT", "storage.googleapis.com", "/acme-prod-data?lifecycle", dev, "storage.buckets.patch", ""},
		{"bucket acl", "PUT", "storage.googleapis.com", "/acme-prod-data?acl", dev, "storage.buckets.patch", ""},
		{"object list", "GET", "storage.googleapis.com", "/acme-prod-data", dev, "storage.objects.list", ""},
		{"HMAC key create", "POST", "storage.googleapis.com", "/?Action=CreateAccessKey&UserName=sa%40acme-prod.iam.gserviceaccount.com", dev, "storage.projects.hmacKeys.create", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: tc.method, Host: tc.host, Path: tc.path, Headers: tc.headers})
			if err != nil {
				t.Fatal(err)
			}
			if got.Operation.Method != tc.id || got.Operation.Project != tc.project {
				t.Fatalf("got %s in project %q, want %s in project %q", got.Operation.Method, got.Operation.Project, tc.id, tc.project)
			}
		})
	}
}

// TestInteropHeaders: the x-amz-* twins of x-goog-* headers mean what
// their twins mean, and two spellings that disagree are refused.
func TestInteropHeaders(t *testing.T) {
	r := newTestRecognizer()
	obj := "/acme-prod-data/db.sql"
	tests := []struct {
		name    string
		headers map[string]string
		id      string // or refused
		params  map[string]string
	}{
		{"x-amz-copy-source is a copy", map[string]string{"x-amz-copy-source": "/acme-prod-secrets/key.pem"}, "storage.objects.copy",
			map[string]string{"sourceBucket": "acme-prod-secrets", "sourceObject": "key.pem", "bucket": "acme-prod-data", "object": "db.sql"}},
		{"x-goog-copy-source is a copy", map[string]string{"x-goog-copy-source": "acme-prod-secrets/dir%2Fkey.pem"}, "storage.objects.copy",
			map[string]string{"sourceBucket": "acme-prod-secrets", "sourceObject": "dir/key.pem"}},
		{"both spellings agreeing", map[string]string{"x-goog-copy-source": "/a/b", "x-amz-copy-source": "/a/b"}, "storage.objects.copy", nil},
		{"both spellings disagreeing", map[string]string{"x-goog-copy-source": "/a/b", "x-amz-copy-source": "/acme-prod-secrets/key.pem"}, "refused", nil},
		{"acl spellings disagreeing", map[string]string{"x-goog-acl": "private", "x-amz-acl": "public-read"}, "refused", nil},
		{"metadata spellings disagreeing", map[string]string{"x-goog-meta-owner": "a", "x-amz-meta-owner": "b"}, "refused", nil},
		{"x-amz-acl alone is an upload", map[string]string{"x-amz-acl": "public-read"}, "storage.objects.insert", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Recognize(Request{Method: "PUT", Host: "storage.googleapis.com", Path: obj, Headers: tc.headers})
			if tc.id == "refused" {
				assertRefused(t, err, "send one of them")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Operation.Method != tc.id {
				t.Fatalf("got %q, want %q", got.Operation.Method, tc.id)
			}
			for k, v := range tc.params {
				if got.Operation.Params[k] != v {
					t.Errorf("param %s = %q, want %q", k, got.Operation.Params[k], v)
				}
			}
		})
	}
	// The JSON API has its own copy method and ignores the XML headers.
	got, err := r.Recognize(Request{Method: "POST", Host: "storage.googleapis.com", Path: "/storage/v1/b/a/o/b/copyTo/b/c/o/d",
		Headers: map[string]string{"x-amz-copy-source": "/x/y"}})
	if err != nil || got.Operation.Method != "storage.objects.copy" {
		t.Fatalf("JSON copy: %v %q", err, got.Operation.Method)
	}
}

// TestXMLHMACKeys: the XML API manages HMAC keys with ?Action= at the
// root; creating one mints a credential and must not read as a bucket list.
func TestXMLHMACKeys(t *testing.T) {
	r := newTestRecognizer()
	tests := []struct{ method, path, id string }{
		{"POST", "/?Action=CreateAccessKey&UserName=sa%40p.iam.gserviceaccount.com", "storage.projects.hmacKeys.create"},
		{"GET", "/?Action=CreateAccessKey&UserName=sa%40p.iam.gserviceaccount.com", "storage.projects.hmacKeys.create"},
		{"POST", "/?Action=DeleteAccessKey&AccessKeyId=GOOG1X", "storage.projects.hmacKeys.delete"},
		{"GET", "/?Action=GetAccessKey&AccessKeyId=GOOG1X", "storage.projects.hmacKeys.get"},
		{"GET", "/?Action=ListAccessKeys", "storage.projects.hmacKeys.list"},
		{"POST", "/?Action=UpdateAccessKey&AccessKeyId=GOOG1X&Status=Inactive", "storage.projects.hmacKeys.update"},
		{"GET", "/?Action=Other", ""},
		{"GET", "/?Action=ListAccessKeys&Action=CreateAccessKey", ""},
	}
	for _, tc := range tests {
		got, err := r.Recognize(Request{Method: tc.method, Host: "storage.googleapis.com", Path: tc.path})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if got.Operation.Method != tc.id {
			t.Errorf("%s %s = %q, want %q", tc.method, tc.path, got.Operation.Method, tc.id)
		}
	}
	got, _ := r.Recognize(Request{Method: "POST", Host: "storage.googleapis.com", Path: "/?Action=CreateAccessKey&UserName=sa%40p.iam.gserviceaccount.com"})
	if got.Operation.ReadOnly || got.Operation.Params["serviceAccountEmail"] != "sa@p.iam.gserviceaccount.com" {
		t.Errorf("create = %+v", got.Operation)
	}
	got, _ = r.Recognize(Request{Method: "PUT", Host: "storage.googleapis.com", Path: "/acme-prod-data/all.tar?compose"})
	if got.Operation.Method != "storage.objects.compose" {
		t.Errorf("compose = %q", got.Operation.Method)
	}
}

// TestSystemParameters: response formats the gateway cannot inspect, JSONP,
// credential parameters the gateway would not remove and slices of the
// serial port output are refused before policy, whatever their spelling.
func TestSystemParameters(t *testing.T) {
	r := newTestRecognizer()
	const access = "/v1/projects/acme-prod/secrets/db/versions/latest:access"
	const serial = instancePath + "/serialPort"
	tests := []struct {
		name, host, path, refused string // refused: substring, or "" when accepted
	}{
		{"alt=proto", "secretmanager.googleapis.com", access + "?alt=proto", "alt=json"},
		{"$alt=proto", "secretmanager.googleapis.com", access + "?$alt=proto", "alt=json"},
		{"%24alt=proto", "secretmanager.googleapis.com", access + "?%24alt=proto", "alt=json"},
		{"%61lt=proto", "secretmanager.googleapis.com", access + "?%61lt=proto", "alt=json"},
		{"alt=sse", "secretmanager.googleapis.com", access + "?alt=sse", "alt=json"},
		{"alt=JSON", "secretmanager.googleapis.com", access + "?alt=JSON", "alt=json"},
		{"empty alt", "secretmanager.googleapis.com", access + "?alt=", "alt=json"},
		{"json then proto", "secretmanager.googleapis.com", access + "?alt=json&$alt=proto", "alt=json"},
		{"json and media", "storage.googleapis.com", "/storage/v1/b/a/o/b?alt=json&alt=media", "give alt once"},
		{"alt=proto in a batch part", "storage.googleapis.com", "batch", "alt=json"},
		{"callback", "secretmanager.googleapis.com", access + "?callback=f", "JSONP"},
		{"$callback", "secretmanager.googleapis.com", access + "?%24callback=f", "JSONP"},
		{"escaped access_token", "compute.googleapis.com", instancePath + "?%61ccess_token=ya29.x", "Authorization header"},
		{"escaped oauth_token", "compute.googleapis.com", instancePath + "?oauth%5Ftoken=ya29.x", "Authorization header"},
		{"$access_token", "compute.googleapis.com", instancePath + "?$access_token=ya29.x", "Authorization header"},
		{"serial port start", "compute.googleapis.com", serial + "?port=1&start=28", "omit start"},
		{"serial port escaped start", "compute.googleapis.com", serial + "?%73tart=28", "omit start"},
		{"serial port two starts", "compute.googleapis.com", serial + "?start=0&start=28", "omit start"},
		{"serial port negative start", "compute.googleapis.com", serial + "?start=-1", "omit start"},

		{"alt=json", "secretmanager.googleapis.com", access + "?alt=json", ""},
		{"$alt=json", "secretmanager.googleapis.com", access + "?$alt=json", ""},
		{"alt=media", "storage.googleapis.com", "/storage/v1/b/a/o/b?alt=media", ""},
		{"plain access_token (removed by the gateway)", "compute.googleapis.com", instancePath + "?access_token=ya29.x", ""},
		{"serial port start=0", "compute.googleapis.com", serial + "?start=0", ""},
		{"serial port without start", "compute.googleapis.com", serial + "?port=2", ""},
		{"start elsewhere", "compute.googleapis.com", instancePath + "?start=28", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Method: "GET", Host: tc.host, Path: tc.path}
			if tc.path == "batch" {
				req = Request{Method: "POST", Host: tc.host, Path: "/batch/storage/v1",
					Headers: map[string]string{"content-type": "multipart/mixed; boundary=b"},
					Body:    batchBody("b", "GET /storage/v1/b/a/o/b?alt=proto HTTP/1.1\r\n\r\n")}
			}
			_, err := r.Recognize(req)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			assertRefused(t, err, tc.refused)
		})
	}
}
