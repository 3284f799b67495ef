package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/airlockhq/airlock/gcp"
)

var testRecognizer = gcp.NewRecognizer(gcp.DefaultCatalog(), nil)

// binding recognises a request and binds it as the engine would.
func binding(t testing.TB, method, url, body string, headers ...string) Binding {
	t.Helper()
	host, path, _ := strings.Cut(strings.TrimPrefix(url, "https://"), "/")
	h := map[string]string{":method": method, ":authority": host, ":path": "/" + path}
	if body != "" {
		h["content-length"] = strconv.Itoa(len(body))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	rec, err := testRecognizer.Recognize(gcp.Request{Method: method, Host: host, Path: "/" + path, Headers: h, Body: []byte(body)})
	if err != nil {
		t.Fatalf("recognise %s %s: %v", method, url, err)
	}
	return Binding{Issuer: "https://issuer.example", Subject: "agent-1", Policy: "prod", Rule: "writes", Request: rec, Headers: h, Body: []byte(body)}
}

func mustFP(t testing.TB, b Binding) string {
	t.Helper()
	fp, err := b.Fingerprint()
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	if len(fp) != 64 || strings.ToLower(fp) != fp {
		t.Fatalf("fingerprint %q is not a lower-case hex SHA-256", fp)
	}
	return fp
}

const setMetadata = "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata"

func TestFingerprintBindsMeaning(t *testing.T) {
	const body = `{"fingerprint":"abc","items":[{"key":"a","value":"1"},{"key":"n","value":2.50}]}`
	base := binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", body, "content-type", "application/json")
	want := mustFP(t, base)
	with := func(f func(b *Binding)) Binding {
		b := binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", body, "content-type", "application/json")
		f(&b)
		return b
	}
	same := map[string]Binding{
		"members reordered, whitespace": binding(t, "POST", setMetadata+"?fields=id,name&requestId=1", "\n{ \"items\" : [ {\"value\":\"1\",\"key\":\"a\"}, {\"value\":2.50,\"key\":\"n\"} ] ,\"fingerprint\":\"abc\"}\t",
			"content-type", "application/json"),
		"escaped string": binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", `{"fingerprint":"\u0061b\u0063","items":[{"key":"a","value":"1"},{"key":"n","value":2.50}]}`, "content-type", "application/json"),
		"unbound headers": with(func(b *Binding) {
			for k, v := range map[string]string{"authorization": "Bearer x", "x-request-id": "r2", "traceparent": "00-1", "tracestate": "a=b", "x-cloud-trace-context": "t/1", "grpc-trace-bin": "x",
				"b3": "1", "x-b3-traceid": "1", "user-agent": "curl", "accept-encoding": "br", "x-goog-api-client": "gl-go", "connection": "close", "te": "trailers",
				"keep-alive": "5", "x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "http", "x-envoy-auth-partial-body": "false", "x-airlock-session": "s", "cookie": "c=1",
				"proxy-authorization": "Basic x", "transfer-encoding": "chunked", ":scheme": "http"} {
				b.Headers[k] = v
			}
		}),
		"header value spaces":  with(func(b *Binding) { b.Headers["content-type"] = "  application/json\t" }),
		"access_token dropped": with(func(b *Binding) { b.Request.Query["access_token"] = []string{"ya29.x"} }),
	}
	for name, b := range same {
		if got := mustFP(t, b); got != want {
			t.Errorf("%s: fingerprint differs", name)
		}
	}
	different := map[string]Binding{
		"issuer":           with(func(b *Binding) { b.Issuer = "https://other.example" }),
		"subject":          with(func(b *Binding) { b.Subject = "agent-2" }),
		"policy":           with(func(b *Binding) { b.Policy = "prod2" }),
		"rule":             with(func(b *Binding) { b.Rule = "writes2" }),
		"operation":        with(func(b *Binding) { b.Request.Operation.Method = "compute.instances.stop" }),
		"resource":         with(func(b *Binding) { b.Request.Operation.Resource += "x" }),
		"method":           with(func(b *Binding) { b.Request.Method = "PUT" }),
		"host":             with(func(b *Binding) { b.Request.Host = "compute.mtls.googleapis.com" }),
		"path":             with(func(b *Binding) { b.Request.Path += "x" }),
		"query value":      with(func(b *Binding) { b.Request.Query["requestId"] = []string{"2"} }),
		"query order":      with(func(b *Binding) { b.Request.Query["requestId"] = []string{"1", "2"} }),
		"query key":        with(func(b *Binding) { b.Request.Query["key"] = []string{"AIza"} }),
		"number text":      binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", strings.Replace(body, "2.50", "2.5", 1), "content-type", "application/json"),
		"number vs string": binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", strings.Replace(body, "2.50", `"2.50"`, 1), "content-type", "application/json"),
		"element order":    binding(t, "POST", setMetadata+"?requestId=1&fields=id,name", `{"fingerprint":"abc","items":[{"key":"n","value":2.50},{"key":"a","value":"1"}]}`, "content-type", "application/json"),
		"bound header":     with(func(b *Binding) { b.Headers["x-goog-user-project"] = "other" }),
		"unknown header":   with(func(b *Binding) { b.Headers["x-goog-2030-feature"] = "on" }),
		"content type":     with(func(b *Binding) { b.Headers["content-type"] = "application/json; charset=latin1" }),
		"acl header":       with(func(b *Binding) { b.Headers["x-goog-acl"] = "public-read" }),
	}
	seen := map[string]string{}
	for name, b := range different {
		got := mustFP(t, b)
		if got == want {
			t.Errorf("%s: fingerprint unchanged", name)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("%s and %s share a fingerprint", name, prev)
		}
		seen[got] = name
	}
}

func TestFingerprintBodyForms(t *testing.T) {
	const obj = "https://storage.googleapis.com/acme-data/notes.json"
	// Object data is bound by its bytes even when it is JSON.
	a := mustFP(t, binding(t, "PUT", obj, `{"a":1,"b":2}`, "content-type", "application/json"))
	b := mustFP(t, binding(t, "PUT", obj, `{"b":2,"a":1}`, "content-type", "application/json"))
	if a == b {
		t.Error("two different objects (JSON member order) share a fingerprint")
	}
	const upload = "https://storage.googleapis.com/upload/storage/v1/b/acme-data/o?uploadType=media&name=n.json"
	if mustFP(t, binding(t, "POST", upload, `{"a":1,"b":2}`, "content-type", "application/json")) == mustFP(t, binding(t, "POST", upload, `{"b":2,"a":1}`, "content-type", "application/json")) {
		t.Error("two different uploads share a fingerprint")
	}
	// A JSON API message is canonical; a lone surrogate is not U+FFFD.
	const insert = "https://storage.googleapis.com/storage/v1/b/acme-data/o/n/rewriteTo/b/acme-data/o/m"
	x := mustFP(t, binding(t, "POST", insert, `{"metadata":{"k":"\ud800"}}`, "content-type", "application/json"))
	y := mustFP(t, binding(t, "POST", insert, `{"metadata":{"k":"\ufffd"}}`, "content-type", "application/json"))
	z := mustFP(t, binding(t, "POST", insert, "{\"metadata\":{\"k\":\"\uFFFD\"}}", "content-type", "application/json"))
	if x == y || y != z {
		t.Errorf("lone surrogate %s, escaped U+FFFD %s, raw U+FFFD %s", x[:8], y[:8], z[:8])
	}
	// A surrogate pair is the character it encodes.
	if mustFP(t, binding(t, "POST", insert, `{"k":"\ud83d\ude00"}`, "content-type", "application/json")) != mustFP(t, binding(t, "POST", insert, `{"k":"😀"}`, "content-type", "application/json")) {
		t.Error("a surrogate pair differs from its character")
	}
	// Invalid JSON is bound by its bytes, never equal to a valid body.
	if mustFP(t, binding(t, "POST", insert, `{"k":1,}`, "content-type", "application/json")) == mustFP(t, binding(t, "POST", insert, `{"k":1}`, "content-type", "application/json")) {
		t.Error("invalid JSON shares the fingerprint of valid JSON")
	}
	// An empty body differs from a body.
	if mustFP(t, binding(t, "POST", insert, "", "content-type", "application/json")) == mustFP(t, binding(t, "POST", insert, "{}", "content-type", "application/json")) {
		t.Error("an empty body is {}")
	}
}

func TestFingerprintBatchParts(t *testing.T) {
	const url = "https://storage.googleapis.com/batch/storage/v1"
	part := func(obj, hdr string) string {
		return "Content-Type: application/http\r\nContent-ID: <1>\r\n\r\nPATCH /storage/v1/b/acme-data/o/" + obj + " HTTP/1.1\r\nContent-Type: application/json\r\n" + hdr + "\r\n{\"acl\":[]}\r\n"
	}
	batch := func(boundary string, parts ...string) Binding {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString("--" + boundary + "\r\n" + p)
		}
		b.WriteString("--" + boundary + "--\r\n")
		return binding(t, "POST", url, b.String(), "content-type", "multipart/mixed; boundary="+boundary)
	}
	base := mustFP(t, batch("aaa", part("o1", ""), part("o2", "")))
	if got := mustFP(t, batch("bbb", part("o1", ""), part("o2", ""))); got != base {
		t.Error("the boundary alone changed the fingerprint")
	}
	for name, b := range map[string]Binding{
		"part order":   batch("aaa", part("o2", ""), part("o1", "")),
		"part object":  batch("aaa", part("o1", ""), part("o3", "")),
		"part header":  batch("aaa", part("o1", "x-goog-acl: public-read\r\n"), part("o2", "")),
		"part dropped": batch("aaa", part("o1", "")),
	} {
		if mustFP(t, b) == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	if _, err := batch("aaa", part("o1", "Content-Length: 99\r\n")).Fingerprint(); err == nil || !strings.Contains(err.Error(), "batch part 1") {
		t.Errorf("a part whose content-length disagrees with its body: %v", err)
	}
	dup := "Content-Type: application/http\r\n\r\nPATCH /storage/v1/b/acme-data/o/o1 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"acl\":[],\"acl\":[{}]}\r\n"
	// A duplicate member never reaches the fingerprint: recognition
	// refuses it before policy.
	body := "--aaa\r\n" + part("o1", "") + "--aaa\r\n" + dup + "--aaa--\r\n"
	if _, err := testRecognizer.Recognize(gcp.Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1",
		Headers: map[string]string{"content-type": "multipart/mixed; boundary=aaa"}, Body: []byte(body)}); err == nil || !strings.Contains(err.Error(), `batch part 2: the JSON body names the member "acl" twice`) {
		t.Errorf("a duplicate member in a part: %v", err)
	}
}

// reformat re-writes a JSON text with every object's members in reverse
// order and extra whitespace, keeping string and number tokens as written.
func reformat(data []byte) []byte {
	var out bytes.Buffer
	pos := 0
	ws := func() {
		for pos < len(data) && strings.IndexByte(" \t\r\n", data[pos]) >= 0 {
			pos++
		}
	}
	var value func() []byte
	token := func() []byte {
		start := pos
		if data[pos] == '"' {
			pos++
			for data[pos] != '"' {
				if data[pos] == '\\' {
					pos++
				}
				pos++
			}
			pos++
			return data[start:pos]
		}
		for pos < len(data) && strings.IndexByte(",:]} \t\r\n", data[pos]) < 0 {
			pos++
		}
		return data[start:pos]
	}
	value = func() []byte {
		ws()
		var b bytes.Buffer
		switch data[pos] {
		case '{':
			pos++
			var members [][]byte
			for {
				ws()
				if data[pos] == '}' {
					pos++
					break
				}
				if data[pos] == ',' {
					pos++
					continue
				}
				k := token()
				ws()
				pos++ // ':'
				v := value()
				members = append(members, append(append(append([]byte{}, k...), " :\n "...), v...))
			}
			b.WriteString("{ ")
			for i := len(members) - 1; i >= 0; i-- {
				b.Write(members[i])
				if i > 0 {
					b.WriteString(" ,\t")
				}
			}
			b.WriteString("\r\n}")
		case '[':
			pos++
			b.WriteString("[ ")
			first := true
			for {
				ws()
				if data[pos] == ']' {
					pos++
					break
				}
				if data[pos] == ',' {
					pos++
					continue
				}
				if !first {
					b.WriteString(" , ")
				}
				first = false
				b.Write(value())
			}
			b.WriteString(" ]")
		default:
			b.Write(token())
		}
		return b.Bytes()
	}
	out.WriteString("\n ")
	out.Write(value())
	out.WriteString(" \n")
	return out.Bytes()
}

var loneSurrogate = regexp.MustCompile(`(?i)\\ud[89a-f]`)

// decodeJSON is the reference reading of a JSON text.
func decodeJSON(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return nil, false
	}
	return v, true
}

func FuzzFingerprint(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, `{"c":{"d":"e"},"b":[true,false,null],"a":1}`},
		{`{"items":[{"key":"a","value":"1"}]}`, `{"items":[{"key":"a","value":"1.0"}]}`},
		{`{"k":"\u00e9\n\"x\""}`, `{"k":"é\n\"x\""}`},
		{`[1, 2.5e10, -0, "s"]`, `[1,2.5E10,-0,"s"]`},
		{`{"a":{"b":{"c":{}}}}`, `{"a":{"b":{"c":[]}}}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"k":"\ud800"}`, `{"k":"\ufffd"}`},
		{"not json", "{"},
	} {
		f.Add([]byte(s[0]), []byte(s[1]), "application/json")
	}
	f.Add([]byte("--b\r\nContent-Type: application/http\r\n\r\nGET /storage/v1/b/x/o HTTP/1.1\r\n\r\n--b--"), []byte("x"), "multipart/mixed; boundary=b")
	f.Fuzz(func(t *testing.T, a, b []byte, ct string) {
		mk := func(body []byte) Binding {
			h := map[string]string{"content-type": ct, "content-length": strconv.Itoa(len(body))}
			return Binding{Issuer: "i", Subject: "s", Policy: "p", Rule: "r", Headers: h, Body: body,
				Request: gcp.Recognized{Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/projects/p/zones/z/instances/i/setMetadata",
					Operation: gcp.Operation{Service: "compute", Method: "compute.instances.setMetadata"}}}
		}
		// Any bytes, headers and recognised batches: never a panic.
		fa, errA := mk(a).Fingerprint()
		if rec, err := testRecognizer.Recognize(gcp.Request{Method: "POST", Host: "storage.googleapis.com", Path: "/batch/storage/v1", Headers: map[string]string{"content-type": ct}, Body: a}); err == nil {
			_, _ = Binding{Request: rec, Headers: map[string]string{"content-type": ct}, Body: a}.Fingerprint()
		}
		if errA != nil {
			var ue *UnbindableError
			if !errors.As(errA, &ue) {
				t.Fatalf("Fingerprint error %T %v is not an *UnbindableError", errA, errA)
			}
			return
		}
		// A different meaning: another method.
		other := mk(a)
		other.Request.Method = "PUT"
		if fo, _ := other.Fingerprint(); fo == fa {
			t.Fatal("another method shares the fingerprint")
		}
		if !jsonMessage(mk(a).Request, map[string]string{"content-type": ct}) {
			return
		}
		ra, okA := decodeJSON(a)
		if !okA || !json.Valid(a) || !utf8.Valid(a) {
			return
		}
		// Member order and whitespace: the same fingerprint.
		if fr, err := mk(reformat(a)).Fingerprint(); err != nil || fr != fa {
			t.Fatalf("reformatted JSON: %v, same = %v\n%s\n%s", err, fr == fa, a, reformat(a))
		}
		// The same meaning as encoding/json reads it, and only then, the
		// same fingerprint (lone surrogates aside: encoding/json reads
		// them as U+FFFD, which they are not).
		fb, errB := mk(b).Fingerprint()
		rb, okB := decodeJSON(b)
		if errB != nil || !okB || !json.Valid(b) || !utf8.Valid(b) || loneSurrogate.Match(a) || loneSurrogate.Match(b) {
			return
		}
		if sameMeaning := reflect.DeepEqual(ra, rb); sameMeaning != (fa == fb) {
			t.Fatalf("same meaning %v but same fingerprint %v:\n%s\n%s", sameMeaning, fa == fb, a, b)
		}
	})
}

// BenchmarkFingerprint measures binding a request to its approval.
func BenchmarkFingerprint(b *testing.B) {
	var items []string
	for i := 0; len(strings.Join(items, ",")) < 4000; i++ {
		items = append(items, fmt.Sprintf(`{"key":"key-%03d","value":"value %d with some text"}`, i, i))
	}
	body := `{"fingerprint":"abcdef","items":[` + strings.Join(items, ",") + `]}`
	b.Run("json-4KiB", func(b *testing.B) {
		bind := binding(b, "POST", setMetadata+"?requestId=1", body, "content-type", "application/json", "user-agent", "gcloud", "x-goog-user-project", "acme")
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bind.Fingerprint(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch-10-parts", func(b *testing.B) {
		var sb strings.Builder
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&sb, "--bb\r\nContent-Type: application/http\r\n\r\nPATCH /storage/v1/b/acme-data/o/obj-%d HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"metadata\":{\"owner\":\"team-%d\"},\"contentType\":\"text/plain\"}\r\n", i, i)
		}
		sb.WriteString("--bb--\r\n")
		bind := binding(b, "POST", "https://storage.googleapis.com/batch/storage/v1", sb.String(), "content-type", "multipart/mixed; boundary=bb")
		if len(bind.Request.Parts) != 10 {
			b.Fatalf("%d parts", len(bind.Request.Parts))
		}
		b.SetBytes(int64(sb.Len()))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bind.Fingerprint(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
