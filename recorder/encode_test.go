package recorder

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// sampleEvents covers every field of every kind, empty and set.
func sampleEvents() []*Event {
	t := time.Date(2026, 11, 29, 1, 2, 3, 456789000, time.UTC)
	return []*Event{
		{Session: "s-1", Segment: "seg", Seq: 0, Time: t, Kind: KindDecision, Prev: "p",
			Decision: &DecisionEvent{Decision: DecisionAllowed}},
		{Session: "s-1~abc", Segment: "20261129T010203Z.0123456789abcdef", Seq: 42, Time: t.Add(time.Second), Kind: KindDecision, RequestID: "r-1",
			Prev: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			Decision: &DecisionEvent{RequestID: "r-1", Subject: "alice@example.com", Email: "alice@example.com", Actor: "bot", Issuer: "https://issuer",
				Method: "GET", Host: "compute.googleapis.com", Path: "/compute/v1/projects/p/zones/z/instances", Query: "a=1&b=<2>",
				GCPMethod: "compute.instances.list", Project: "p", Resource: "projects/p", Decision: DecisionPolicyDenied, Policy: "gcp", Rule: "r",
				Rules: []string{"gcp/r", "other/x"}, Message: "denied: \"no\"\n\tplease", ApprovalID: "ap-1", Source: "10.0.0.7", Reason: "POLICY_DENIED",
				Headers:     map[string]string{"user-agent": "curl", ":path": "/x?y", "authorization": Masked, "x-b": "\u2028\u2029", "x-a": "\x00\x1f\x7f"},
				BodyExcerpt: `{"k":"v & w"}`, BodyBytes: 12, Mode: "dry_run"}},
		{Session: "s", Segment: "g", Seq: 1, Time: t, Kind: KindRequest, RequestID: "r",
			Request: &RequestEvent{Subject: "s", Actor: "a", GCPMethod: "m", Method: "POST", Host: "h", Path: "/p", Headers: map[string]string{"a": "b"}, BodyExcerpt: "x", BodyBytes: 1}},
		{Session: "s", Segment: "g", Seq: 2, Time: t, Kind: KindRequest, Request: &RequestEvent{}},
		{Session: "s", Segment: "g", Seq: 3, Time: t, Kind: KindResponse,
			Response: &ResponseEvent{Subject: "s", GCPMethod: "m", Status: 200, Headers: map[string]string{"content-type": "application/json"}, BodyExcerpt: "[MASKED]", TotalBytes: 1 << 40}},
		{Session: "s", Segment: "g", Seq: 4, Time: t, Kind: KindResponse, Response: &ResponseEvent{}},
		{Session: "s", Segment: "g", Seq: 5, Time: t, Kind: KindVote,
			Vote: &VoteEvent{RequestID: "r", ApprovalID: "a", Approver: "bob", Vote: "approve", Reason: "ok", Rule: "prod", Subject: "alice", State: "approved"}},
		{Session: "s", Segment: "g", Seq: 6, Time: t, Kind: KindVote, Vote: &VoteEvent{}},
		{Session: "s", Segment: "g", Seq: 8, Time: t, Kind: KindToolCall, RequestID: "r",
			ToolCall: &ToolCallEvent{Subject: "s", Server: "compute", Host: "compute.googleapis.com", Tool: "stop_instance", CallID: `"a<1>"`, GCPMethod: "compute.instances.stop",
				Arguments: `{"name":"web-1"}`, Result: `{"content":[{"type":"text","text":"done &  "}]}`, ResultBytes: 1 << 33, IsError: true}},
		{Session: "s", Segment: "g", Seq: 9, Time: t, Kind: KindToolCall, ToolCall: &ToolCallEvent{}},
		{Session: "s", Segment: "g", Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: KindClose, Reason: "idle"},
		{Session: "bad \xff utf8 \xe2\x80", Segment: "", Time: t, Kind: ""},
	}
}

func TestAppendEventMatchesJSON(t *testing.T) {
	for i, e := range sampleEvents() {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestAppendEventOutOfRangeTime(t *testing.T) {
	_, err := appendEvent(nil, &Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil {
		t.Fatal("year 10000 encoded")
	}
}

// FuzzAppendString holds the hand-written string encoding to encoding/json
// for arbitrary bytes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>", "\"\\/", "\x00\x01\b\f\n\r\t\x1f\x7f", "\u2028\u2029\u00e9\U0001F600", "\xff\xfe", "\xe2\x80", "a\xed\xa0\x80b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
		e := &Event{Session: s, Kind: KindDecision, Time: time.Unix(0, 0).UTC(), Decision: &DecisionEvent{Decision: s, Headers: map[string]string{s: s, "z" + s: ""}, Rules: []string{s}}}
		want, _ = json.Marshal(e)
		if got, _ := appendEvent(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("event %q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// TestAppendEventHeaderList: headers the recorder masked into a sorted
// list are written as encoding/json writes the same headers as a map.
func TestAppendEventHeaderList(t *testing.T) {
	raw := map[string]string{"User-Agent": "curl", ":path": "/x?y", "authorization": "Bearer t", "x-b": "\u2028<&>", "x-a": "\x00\x1f\x7f", "Accept": "b", "accept": "a"}
	headers := func(mask func([]byte) []byte) []header {
		hs, _, _ := newHeaderMasker(mask).maskHeaders(raw, "", "")
		return hs
	}
	mask := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("curl"), []byte("[MASKED:x]")) }
	for _, e := range []*Event{
		{Kind: KindDecision, Decision: &DecisionEvent{Decision: DecisionAllowed, headers: headers(mask)}},
		{Kind: KindRequest, Request: &RequestEvent{headers: headers(nil)}},
		{Kind: KindResponse, Response: &ResponseEvent{headers: headers(mask)}},
	} {
		got, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		// The same event with the list as a map, through encoding/json.
		asMap := func(hs []header) map[string]string {
			m := map[string]string{}
			for _, h := range hs {
				if _, dup := m[h.name]; dup {
					t.Fatalf("name %q twice in %v", h.name, hs)
				}
				m[h.name] = h.value
			}
			return m
		}
		switch {
		case e.Decision != nil:
			e.Decision.Headers = asMap(e.Decision.headers)
		case e.Request != nil:
			e.Request.Headers = asMap(e.Request.headers)
		default:
			e.Response.Headers = asMap(e.Response.headers)
		}
		want, _ := json.Marshal(e)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", e.Kind, got, want)
		}
		if bytes.Contains(got, []byte("Bearer t")) || !bytes.Contains(got, []byte(`"authorization":"[MASKED]"`)) {
			t.Errorf("%s: credential not masked: %s", e.Kind, got)
		}
	}
}

// TestMaskHeadersOnePass: header values, path and query are masked in one
// call of the masker; a value left alone is not copied, and a match
// across the line breaks that join them falls back to one call each.
func TestMaskHeadersOnePass(t *testing.T) {
	const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	calls := 0
	mask := func(b []byte) []byte {
		calls++
		b = bytes.ReplaceAll(b, []byte(key), []byte("[MASKED:api_key]"))
		return bytes.ReplaceAll(b, []byte("SECRET\nSPLIT"), []byte("[MASKED:split]"))
	}
	path, query := "/v1/projects/p", "key="+key+"&alt=json"
	ua := "gcloud/500"
	hs, path, query := newHeaderMasker(mask).maskHeaders(map[string]string{"User-Agent": ua, "x-note": "see " + key, "Authorization": "Bearer " + key}, path, query)
	if calls != 1 {
		t.Errorf("masker called %d times, want 1", calls)
	}
	want := []header{{"authorization", Masked}, {"user-agent", ua}, {"x-note", "see [MASKED:api_key]"}}
	if !slices.Equal(hs, want) {
		t.Errorf("headers %v, want %v", hs, want)
	}
	if unsafe.StringData(hs[1].value) != unsafe.StringData(ua) {
		t.Error("an unchanged value was copied")
	}
	if path != "/v1/projects/p" || query != "key=[MASKED:api_key]&alt=json" {
		t.Errorf("path %q query %q", path, query)
	}

	// A match across the joining line break: each text masked alone.
	calls = 0
	a, b := "x SECRET", "SPLIT y"
	hs, _, _ = newHeaderMasker(mask).maskHeaders(map[string]string{"a": a, "b": b}, "", "")
	if want := []header{{"a", a}, {"b", b}}; !slices.Equal(hs, want) || calls != 3 {
		t.Errorf("across lines: %v after %d calls, want %v after 3", hs, calls, want)
	}
	// A value holding a line break itself is never split back wrongly.
	calls = 0
	hs, _, _ = newHeaderMasker(mask).maskHeaders(map[string]string{"a": "1\n" + key, "b": "2"}, "", "")
	if want := []header{{"a", "1\n[MASKED:api_key]"}, {"b", "2"}}; !slices.Equal(hs, want) {
		t.Errorf("value with a line break: %v, want %v", hs, want)
	}
}

// TestMaskHeadersInPlaceMasker: a masker that rewrites its input in place
// and returns it still masks the recorded values.
func TestMaskHeadersInPlaceMasker(t *testing.T) {
	stars := func(b []byte) []byte {
		for i := 0; i+6 <= len(b); i++ {
			if string(b[i:i+6]) == "secret" {
				copy(b[i:], "******")
			}
		}
		return b
	}
	query := "token=secret"
	hs, _, query := newHeaderMasker(stars).maskHeaders(map[string]string{"x-note": "a secret here", "accept": "json"}, "", query)
	if want := []header{{"accept", "json"}, {"x-note", "a ****** here"}}; !slices.Equal(hs, want) || query != "token=******" {
		t.Fatalf("headers %v query %q, want %v and token=******", hs, query, want)
	}
}
