package gcp

import (
	"fmt"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want, refused string
	}{
		{"/", "/", ""},
		{"/a/b", "/a/b", ""},
		{"/%41%62%7e%2D%2e%5F", "/Ab~-._", ""},
		{"/a%2fb", "/a%2Fb", ""},
		{"/a%2Fb", "/a%2Fb", ""},
		{"/o/%c3%a9t%C3%A9", "/o/%C3%A9t%C3%A9", ""},
		{"/a:verb", "/a:verb", ""},
		{"/a;b=c/@x/!$&'()*+,=", "/a;b=c/@x/!$&'()*+,=", ""},
		{"/%25/%3F/%23", "/%25/%3F/%23", ""},
		{"/.../x", "/.../x", ""}, // three dots are a name
		{"/a/%2e", "", "dot segment"},
		{"/a/%2E%2e/b", "", "dot segment"},
		{"/..", "", "dot segment"},
		{"/a//b", "", "empty segment"},
		{"//a", "", "empty segment"},
		{"/a/", "", "empty segment"},
		{"/a%", "", "invalid percent-encoding"},
		{"/a%4", "", "invalid percent-encoding"},
		{"/a%4g", "", "invalid percent-encoding"},
		{"/a%00", "", "control character"},
		{"/a%1f", "", "control character"},
		{"/a%7F", "", "control character"},
		{"/a%5c", "", "backslash"},
		{"/a\\b", "", "not allowed"},
		{"/a\x00", "", "not allowed"},
		{"/a\tb", "", "not allowed"},
		{"/a b", "", "not allowed"},
		{"/a\x80", "", "not allowed"},
		{"/a#frag", "", "not allowed"},
		{"/a{b}", "", "not allowed"},
		{"/%FF", "", "UTF-8"},
		{"", "", "must start with"},
		{"a/b", "", "must start with"},
		{"http://x/a", "", "must start with"},
	}
	for _, tc := range tests {
		got, err := NormalizePath(tc.in)
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Errorf("NormalizePath(%q) = %q, %v; want refusal with %q", tc.in, got, err, tc.refused)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery("a=1&a=2&b=%2F+x&c&%24httpMethod=GET&semi=a;b")
	if err != nil {
		t.Fatal(err)
	}
	if len(q["a"]) != 2 || q["b"][0] != "/ x" || q["c"][0] != "" || q["$httpMethod"][0] != "GET" || q["semi"][0] != "a;b" {
		t.Fatalf("ParseQuery = %v", q)
	}
	for _, bad := range []string{"a=%", "a=%zz", "a=%00", "a=%FF", "a=b c", "a=\x01"} {
		if _, err := ParseQuery(bad); err == nil {
			t.Errorf("ParseQuery(%q) accepted", bad)
		}
	}
}

// checkNormalized asserts the invariants of a normalised path.
func checkNormalized(t *testing.T, in, out string) {
	t.Helper()
	if !strings.HasPrefix(out, "/") {
		t.Fatalf("NormalizePath(%q) = %q does not start with /", in, out)
	}
	if out != "/" {
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q has segment %q", in, out, seg)
			}
		}
	}
	again, err := NormalizePath(out)
	if err != nil || again != out {
		t.Fatalf("NormalizePath(%q) = %q, but again gives %q, %v", in, out, again, err)
	}
	// Decoding never creates a slash: the segments stay those sent.
	rawPath, _, _ := strings.Cut(in, "?")
	if strings.Count(rawPath, "/") != strings.Count(out, "/") {
		t.Fatalf("NormalizePath(%q) = %q changed the number of segments", in, out)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/%2e%2e/b", "/storage/v1/b/x/o/a%2Fb", "/%41", "/a//b", "/a%", "/\\", "/%c3%a9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("NormalizePath(%q) error %T is not a *RequestError", in, err)
			}
			return
		}
		checkNormalized(t, in, out)
	})
}

func FuzzRecognize(f *testing.F) {
	f.Add("DELETE", "compute.googleapis.com", instancePath, "", "", "")
	f.Add("GET", "storage.googleapis.com", "/bk/a/b?acl", "", "", "x-goog-project-id: acme-dev")
	f.Add("POST", "storage.googleapis.com", "/batch/storage/v1", "multipart/mixed; boundary=b",
		"--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/x/o/y HTTP/1.1\r\n\r\n--b--\r\n", "")
	f.Add("POST", "compute.airlock.example.com:443", instancePath+"?$httpMethod=DELETE", "", "", "")
	f.Add("GET", "secretmanager.us-east1.rep.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access", "", "", "")
	f.Add("PUT", "acme-data.storage-upload.googleapis.com", "/a/b", "", "", "x-amz-copy-source: /src/obj\nx-goog-copy-source: /src/obj")
	f.Add("POST", "secretmanager-ep1.p.googleapis.com", "/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion", "application/grpc-web-text", "", "")
	f.Add("GET", "secretmanager.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access?%24alt=proto", "", "", "")
	f.Add("GET", "compute.googleapis.com", instancePath+"/serialPort?%73tart=28", "", "", "")
	f.Add("POST", "storage.googleapis.com", "/?Action=CreateAccessKey&UserName=a%40b", "", "", "x-goog-project-id: p")
	f.Add("GET", "content-storage.googleapis.com", "/$discovery/rest?version=v1", "", "", "")
	r := NewRecognizer(DefaultCatalog(), []string{"airlock.example.com"})
	f.Fuzz(func(t *testing.T, method, host, path, contentType, body, headerLines string) {
		headers := map[string]string{"content-type": contentType}
		for _, line := range strings.Split(headerLines, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				headers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		got, err := r.Recognize(Request{Method: method, Host: host, Path: path, Headers: headers, Body: []byte(body)})
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error %T is not a *RequestError: %v", err, err)
			}
			return
		}
		checkRecognized(t, path, got)
		_, rawQuery, _ := strings.Cut(path, "?")
		if q, err := ParseQuery(rawQuery); err == nil {
			for _, k := range []string{"alt", "$alt"} {
				for _, v := range q[k] {
					if v != "json" && v != "media" {
						t.Fatalf("%s=%q passed", k, v)
					}
				}
			}
		}
	})
}

// checkRecognized holds the invariants of a recognised request: a
// normalised path, an operation or a reason why there is none, and for the
// Cloud Storage XML API a project only where Google reads one.
func checkRecognized(t *testing.T, path string, got Recognized) {
	t.Helper()
	checkNormalized(t, path, got.Path)
	if got.Parts != nil && got.Operation.Method != "" {
		t.Fatalf("a batch has an operation of its own: %+v", got.Operation)
	}
	unknownPart := ""
	for i, p := range got.Parts {
		if p.Parts != nil {
			t.Fatal("nested batch accepted")
		}
		if p.Unrecognized != "" && unknownPart == "" {
			unknownPart = fmt.Sprintf("batch part %d: %s", i+1, p.Unrecognized)
		}
		if (p.Operation.Method == "") != (p.Unrecognized != "") {
			t.Fatalf("part %d: method %q with reason %q", i+1, p.Operation.Method, p.Unrecognized)
		}
	}
	switch {
	case got.Parts != nil:
		if got.Unrecognized != unknownPart {
			t.Fatalf("batch reason %q, want %q", got.Unrecognized, unknownPart)
		}
	case (got.Operation.Method == "") != (got.Unrecognized != ""):
		t.Fatalf("method %q with reason %q", got.Operation.Method, got.Unrecognized)
	}
	op := got.Operation
	if op.Service == "storage" && op.Project != "" && !strings.HasPrefix(got.Path, "/storage/") &&
		!strings.HasPrefix(got.Path, "/upload/") && !strings.HasPrefix(got.Path, "/download/") && !strings.HasPrefix(got.Path, "/resumable/") &&
		op.Method != "storage.buckets.insert" && op.Method != "storage.buckets.list" {
		t.Fatalf("XML request %s %s has project %q", op.Method, got.Path, op.Project)
	}
}
