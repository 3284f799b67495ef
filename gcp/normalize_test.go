package gcp

import (
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
	f.Add("DELETE", "compute.googleapis.com", instancePath, "", "")
	f.Add("GET", "storage.googleapis.com", "/bk/a/b?acl", "", "")
	f.Add("POST", "storage.googleapis.com", "/batch/storage/v1", "multipart/mixed; boundary=b",
		"--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/x/o/y HTTP/1.1\r\n\r\n--b--\r\n")
	f.Add("POST", "compute.airlock.example.com:443", instancePath+"?$httpMethod=DELETE", "", "")
	f.Add("GET", "secretmanager.us-east1.rep.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access", "", "")
	r := NewRecognizer(DefaultCatalog(), []string{"airlock.example.com"})
	f.Fuzz(func(t *testing.T, method, host, path, contentType, body string) {
		got, err := r.Recognize(Request{Method: method, Host: host, Path: path,
			Headers: map[string]string{"content-type": contentType}, Body: []byte(body)})
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error %T is not a *RequestError: %v", err, err)
			}
			return
		}
		checkNormalized(t, path, got.Path)
		if got.Parts != nil && got.Operation.Method != "" {
			t.Fatalf("a batch has an operation of its own: %+v", got.Operation)
		}
		for _, p := range got.Parts {
			if p.Parts != nil {
				t.Fatal("nested batch accepted")
			}
		}
	})
}
