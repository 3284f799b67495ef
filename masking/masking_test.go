package masking

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// Secrets used by the tests; they look real but are not.
const (
	testAPIKey  = "AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU"
	testGitHub  = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3sXab"
	testStripe  = "sk_live_51HxQ2bKz9Yw8Vt7Us6Rq5Po4"
	testYa29    = "ya29.a0AfB_byDq9pX3vN7mK2lJ8hG5fD4sA1zX6cV0bN9mQ8wE7rT6yU5iO4pL3kJ2hG1fD0sA"
	testAWSID   = "AKIAIOSFODNN7EXAMPLQ"
	testEmail   = "alice.smith@example.com"
	testCard    = "4111 1111 1111 1111"
	testIBAN    = "DE89370400440532013000"
	testSSN     = "123-45-6789"
	testPEMHead = "-----BEGIN RSA PRIVATE KEY-----"
)

const testPEM = testPEMHead + `
MIIEowIBAAKCAQEAu/CJkxDJlNv9vOcUnS+jC+NbU9TQvXiWwN90Gk1waTaykZzZ
RmKxFBeA13CQrT1PnbnYbBtfD2wcXnF752IoaeEHPUXT1SS2LKr2NzUAv9LX3UUB
bcA47EXP7Eg0s5P0g6l+Iea8LN09XRXufhlYF/BE56uD+doUA+96ePcSxH9DGSOr
-----END RSA PRIVATE KEY-----`

func TestBuiltinNames(t *testing.T) {
	names := BuiltinNames()
	if len(names) < 25 {
		t.Fatalf("%d built-in detectors, want at least 25", len(names))
	}
	for _, n := range append(names, GroupAll, GroupCredentials, GroupPersonal) {
		if !IsBuiltin(n) {
			t.Errorf("IsBuiltin(%q) = false", n)
		}
	}
	if IsBuiltin("nope") {
		t.Error(`IsBuiltin("nope") = true`)
	}
}

// Each built-in detector finds its sample in free text and leaves a near miss.
func TestDetectors(t *testing.T) {
	e := testEngine(t)
	for _, tc := range []struct {
		det, hit, miss string
	}{
		{"gcp_api_key", "key=" + testAPIKey + ";", "AIzaShort"},
		{"oauth_token", "t " + testYa29, "ya29.short"},
		{"oauth_refresh_token", "1//0gLx8kZ2vQ9pN3mT6rW1yU4iO7aS0dF5gH8jK2lZ", "1//0abc"},
		{"oauth_client_secret", "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", "GOCSPX-short"},
		{"private_key", testPEM, "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----"},
		{"service_account_key", `{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`, `{"private_key_id": "abc"}`},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "eyJhbGciOi"},
		{"aws_access_key_id", "id " + testAWSID + " ", "AKIAshort"},
		{"aws_secret_access_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws region us-east-1"},
		{"github_token", testGitHub, "ghp_short"},
		{"github_fine_grained_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij", "github_pat_short"},
		{"gitlab_token", "glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-x"},
		{"slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-1"},
		{"slack_webhook", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "hooks.slack.com/"},
		{"stripe_key", testStripe, "sk_live_x"},
		{"sendgrid_key", "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", "SG.short"},
		{"npm_token", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_install"},
		{"pypi_token", "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0LXV2d3h5ejAxMjM0NTY3ODkA", "pypi-AgEIcHlwaS5vcmc"},
		{"openai_key", "sk-proj-abcdefghij1234567890T3BlbkFJabcdefghij1234567890", "sk-proj-abc"},
		{"anthropic_key", "sk-ant-api03-" + strings.Repeat("aB3", 32) + "-xyzAA", "sk-ant-x"},
		{"azure_storage_key", "AccountKey=" + strings.Repeat("Ab1+", 21) + "xy==", "AccountKey=short"},
		{"hashicorp_vault_token", "hvs." + strings.Repeat("Ab9", 32), "hvs.short"},
		{"digitalocean_token", "dop_v1_" + strings.Repeat("0123456789abcdef", 4), "dop_v1_x"},
		{"bearer_token", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789", "bearer of news"},
		{"password_assignment", "DB_PASSWORD=hunter2hunter2", "password reset required"},
		{"generic_secret", "api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "api_key=aaaaaaaaaaaaaaaaaaaa"},
		{"connection_string_password", "postgres://app:s3cr3tpw@db:5432/x", "https://www.googleapis.com/compute/v1"},
		{"email", "mail " + testEmail + " now", "svc@acme-prod.iam.gserviceaccount.com"},
		{"credit_card", "card " + testCard + " ok", "card 4111 1111 1111 1112"},
		{"iban", "iban " + testIBAN, "iban DE89370400440532013001"},
		{"us_ssn", "ssn " + testSSN, "ssn 000-45-6789"},
	} {
		p := Profile{Detectors: []string{tc.det}}
		out, err := e.Mask(p, Text, []byte(tc.hit))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte("[MASKED:"+tc.det+"]")) {
			t.Errorf("%s: not found in %q: %q", tc.det, tc.hit, out)
		}
		out, err = e.Mask(p, Text, []byte(tc.miss))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != tc.miss {
			t.Errorf("%s: false positive on %q: %q", tc.det, tc.miss, out)
		}
	}
}

func TestCustomDetectors(t *testing.T) {
	e, err := NewEngine([]DetectorSpec{
		{Name: "acme_token", Regex: `acme_[0-9a-f]{16}`, Keywords: []string{"acme_"}},
		{Name: "employee_id", Regex: `EMP-(\d{6})`},
		{Name: "random_blob", Regex: `blob:([A-Za-z0-9]{12,})`, Keywords: []string{"blob:"}, Entropy: 3.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := Profile{Detectors: []string{"acme_token", "employee_id", "random_blob"}}
	out, err := e.Mask(p, JSON, []byte(`{"a":"x acme_0123456789abcdef y","b":"EMP-123456","c":"blob:aaaaaaaaaaaaaaaa","d":"blob:q8Zk2LmX7vN4pR1t"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"x [MASKED:acme_token] y","b":"EMP-[MASKED:employee_id]","c":"blob:aaaaaaaaaaaaaaaa","d":"blob:[MASKED:random_blob]"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	// Custom detectors do not run unless a profile names them.
	out, _ = e.Mask(DefaultProfile(), Text, []byte("acme_0123456789abcdef"))
	if string(out) != "acme_0123456789abcdef" {
		t.Fatalf("custom detector ran without being selected: %s", out)
	}
	for _, tc := range []struct {
		spec DetectorSpec
		want string
	}{
		{DetectorSpec{Name: "Bad Name", Regex: "x"}, "name must be"},
		{DetectorSpec{Name: "email", Regex: "x"}, "taken by a built-in"},
		{DetectorSpec{Name: "x", Regex: "("}, "regex"},
		{DetectorSpec{Name: "x", Regex: "a*"}, "empty string"},
		{DetectorSpec{Name: "x", Regex: "a", Entropy: 9}, "entropy"},
	} {
		if _, err := NewEngine([]DetectorSpec{tc.spec}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.spec, err, tc.want)
		}
	}
	if _, err := e.NewStream(Profile{Detectors: []string{"unknown"}}, Text); err == nil || !strings.Contains(err.Error(), `unknown detector "unknown"`) {
		t.Fatalf("unknown detector: %v", err)
	}
}

func TestFieldPaths(t *testing.T) {
	e := testEngine(t)
	for _, tc := range []struct {
		path, in, want string
	}{
		{"payload.data", `{"payload":{"data":"c2VjcmV0","dataCrc32c":"1"}}`, `{"payload":{"data":"[MASKED:f]","dataCrc32c":"1"}}`},
		{"payload.data", `{"x":{"payload":{"data":"v"}}}`, `{"x":{"payload":{"data":"v"}}}`},
		{"**.privateKeyData", `{"a":[{"b":{"privateKeyData":"v"}}],"privateKeyData":{"n":1}}`, `{"a":[{"b":{"privateKeyData":"[MASKED:f]"}}],"privateKeyData":"[MASKED:f]"}`},
		{`metadata.items[?key=="startup-script"].value`, `{"metadata":{"items":[{"key":"a","value":"1"},{"key":"startup-script","value":"2"}]}}`, `{"metadata":{"items":[{"key":"a","value":"1"},{"key":"startup-script","value":"[MASKED:f]"}]}}`},
		{`items[?key=="s"].value`, `{"items":[{"value":"before","key":"s"}]}`, `{"items":[{"value":"[MASKED:f]","key":"s"}]}`},
		{"env[].value", `{"env":[{"name":"A","value":"1"},{"name":"B","value":2}]}`, `{"env":[{"name":"A","value":"[MASKED:f]"},{"name":"B","value":"[MASKED:f]"}]}`},
		{"a.*.c", `{"a":{"x":{"c":1},"y":{"c":[1,2]}}}`, `{"a":{"x":{"c":"[MASKED:f]"},"y":{"c":"[MASKED:f]"}}}`},
		{"a.b", `{"a":{"b":null}}`, `{"a":{"b":null}}`},
		{"a.b", `{"a":{"b":true, "c" : 1.5e3}}`, `{"a":{"b":"[MASKED:f]", "c" : 1.5e3}}`},
	} {
		out, err := e.Mask(Profile{Fields: []Field{{Path: tc.path, Label: "f"}}}, JSON, []byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if string(out) != tc.want {
			t.Errorf("%s on %s:\n got  %s\n want %s", tc.path, tc.in, out, tc.want)
		}
	}
	for _, bad := range []string{"", "a.", "a..b", "a[", "a[?k=v].b", "a[1]", "**", "a[?k==\"v\"]", "a.b*"} {
		if err := e.Check(Profile{Fields: []Field{{Path: bad}}}); err == nil || CheckFieldPath(bad) == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

func TestSecretFields(t *testing.T) {
	e := testEngine(t)
	hmac := `{"kind":"storage#hmacKey","secret":"bGFzdC1obWFjLXNlY3JldC0xMjM0NTY3ODkw","metadata":{"accessId":"GOOG1EXAMPLE","secret":"kept"}}`
	out, err := e.Mask(DefaultProfile(), JSON, []byte(hmac))
	if err != nil || string(out) != `{"kind":"storage#hmacKey","secret":"[MASKED:hmac_secret]","metadata":{"accessId":"GOOG1EXAMPLE","secret":"kept"}}` {
		t.Fatalf("hmac: %v %s", err, out)
	}
	in := `{"user":"bob","password":"plain-words","rootPassword":"","masterAuth":{"clientKey":"abc"},"passwordSet":true,"nextPageToken":"abc123"}`
	out, err = e.Mask(DefaultProfile(), JSON, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user":"bob","password":"[MASKED:password]","rootPassword":"","masterAuth":{"clientKey":"[MASKED:private_key]"},"passwordSet":true,"nextPageToken":"abc123"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

// Escapes are decoded before detectors run; the masked value is re-encoded.
func TestEscapedStrings(t *testing.T) {
	e := testEngine(t)
	in := `{"s":"line1\nkey ` + testAPIKey[:4] + `\u0053` + testAPIKey[5:] + ` \"q\" \ud83d\ude00"}`
	out, err := e.Mask(DefaultProfile(), JSON, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v["s"] != "line1\nkey [MASKED:gcp_api_key] \"q\" 😀" {
		t.Fatalf("got %q", v["s"])
	}
}

// A large text body streams through the carried tail: secrets straddling
// any chunk boundary are masked, whatever the chunk size.
func TestLargeTextChunked(t *testing.T) {
	e := testEngine(t)
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	secrets := []string{testAPIKey, testGitHub, testStripe, testYa29, testAWSID, testPEM}
	for b.Len() < 300<<10 {
		fmt.Fprintf(&b, "line %d: some ordinary log text id=%d ", r.IntN(1e6), r.Int64())
		if r.IntN(40) == 0 {
			b.WriteString(secrets[r.IntN(len(secrets))])
		}
		b.WriteString("\n")
	}
	body := b.Bytes()
	p := DefaultProfile()
	want, err := e.Mask(p, Text, body)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "large text", want, []string{testAPIKey, testGitHub, testStripe, testYa29, testAWSID, "MIIEowIBAAKCAQEAu"})
	for _, size := range []int{1, 3, 64, 1000, 4096, 16 << 10, 65536, 100003} {
		got := maskChunks(t, e, p, Text, chunked(body, size))
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk size %d: output differs:\n%s", size, firstDiff(want, got))
		}
	}
	// Every split point around each secret.
	for _, s := range secrets {
		i := bytes.Index(body, []byte(s))
		if i < 0 {
			continue
		}
		for k := i - 2; k <= i+len(s)+2; k++ {
			got := maskChunks(t, e, p, Text, [][]byte{body[:k], body[k:]})
			if !bytes.Equal(got, want) {
				t.Fatalf("split at %d: output differs", k)
			}
		}
	}
}

// A string value longer than the short-string bound is scanned in a stream.
func TestLongJSONString(t *testing.T) {
	e := testEngine(t)
	var s strings.Builder
	for s.Len() < 200<<10 {
		s.WriteString(`boot ok \n\t \"quoted\" `)
		if s.Len()%7 == 0 {
			s.WriteString(testYa29 + " ")
		}
	}
	s.WriteString(testAPIKey)
	body := []byte(`{"contents":"` + s.String() + `","next":"1"}`)
	want, err := e.Mask(DefaultProfile(), JSON, body)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(want) {
		t.Fatal("invalid JSON out")
	}
	assertNoSecrets(t, "long string", want, []string{testYa29, testAPIKey})
	for _, size := range []int{1, 777, 16 << 10, 65536} {
		got := maskChunks(t, e, DefaultProfile(), JSON, chunked(body, size))
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk size %d: output differs:\n%s", size, firstDiff(want, got))
		}
	}
}

func TestInvalidJSON(t *testing.T) {
	e := testEngine(t)
	for _, in := range []string{
		`{"a":}`, `{"a" 1}`, `[1,]`, `{"a":"b"`, `tru`, `01`, `{"a":"\q"}`, `{"a":1]`, `[`, `"\u12"`, `{"k":"` + testAPIKey + `", x}`, `-`, `1.`, `{"a":"b"}}`,
	} {
		s, err := e.NewStream(DefaultProfile(), JSON)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Write(nil, []byte(in))
		if err == nil {
			out, err = s.Close(out)
		}
		if !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%q: error %v, want ErrInvalidJSON", in, err)
		}
		if bytes.Contains(out, []byte(testAPIKey)) {
			t.Errorf("%q: unmasked secret in output before the error", in)
		}
		if _, err := s.Write(nil, []byte(`1`)); err == nil {
			t.Errorf("%q: stream usable after an error", in)
		}
	}
	// Deep nesting is refused.
	if _, err := e.Mask(DefaultProfile(), JSON, bytes.Repeat([]byte("["), 10000)); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("deep nesting: %v", err)
	}
	// A huge key is refused, not held.
	_, err := e.Mask(DefaultProfile(), JSON, []byte(`{"`+strings.Repeat("k", 1<<20)+`":1}`))
	if !errors.Is(err, ErrUnmaskable) {
		t.Errorf("huge key: %v", err)
	}
	// Several top-level values (JSON lines) are accepted.
	out, err := e.Mask(DefaultProfile(), JSON, []byte("{\"a\":1}\n{\"b\":\""+testAPIKey+"\"}\n"))
	if err != nil || bytes.Contains(out, []byte(testAPIKey)) {
		t.Errorf("JSON lines: %v %s", err, out)
	}
}

// retained sums the capacity of every buffer a stream keeps between writes.
func (s *Stream) retained() int {
	n := 0
	if s.text != nil {
		n += cap(s.text.buf)
	}
	if j := s.json; j != nil {
		n += cap(j.raw) + cap(j.dec) + cap(j.b64) + len(j.clean)*16
		n += cap(j.lb.quad) + cap(j.lb.dec) + cap(j.lb.scratch)
		if j.lt != nil {
			n += cap(j.lt.buf)
		}
		for _, f := range j.stack[:cap(j.stack)] {
			n += cap(f.key)
			for _, p := range f.preds {
				n += cap(p.val)
			}
		}
	}
	return n
}

// A 50 MB string streams with bounded memory and is masked.
func TestHugeStringBoundedMemory(t *testing.T) {
	e := testEngine(t)
	s, err := e.NewStream(DefaultProfile(), JSON)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 64 << 10
	filler := bytes.Repeat([]byte("abcdefgh ij\\n "), chunk/14)
	var out []byte
	if out, err = s.Write(out[:0], []byte(`{"blob":"`)); err != nil {
		t.Fatal(err)
	}
	var total int64
	maxRetained := 0
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for total < 50<<20 {
		if out, err = s.Write(out[:0], filler); err != nil {
			t.Fatal(err)
		}
		total += int64(len(filler))
		maxRetained = max(maxRetained, s.retained())
	}
	if out, err = s.Write(out[:0], []byte(` `+testAPIKey+`"}`)); err != nil {
		t.Fatal(err)
	}
	out, err = s.Close(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out, []byte(`[MASKED:gcp_api_key]"}`)) {
		t.Fatalf("tail %q", out[max(0, len(out)-60):])
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("50 MiB string in %d-byte chunks: stream buffers held at most %d bytes; heap in use grew by %d bytes",
		chunk, maxRetained, int64(after.HeapInuse)-int64(before.HeapInuse))
	if maxRetained > 64<<10 {
		t.Fatalf("stream retained %d bytes", maxRetained)
	}
}

// Memory per stream on ordinary JSON does not grow with the body.
func TestStreamMemoryIndependentOfSize(t *testing.T) {
	e := testEngine(t)
	body := benchCorpus(1 << 20)
	p := Profile{Detectors: []string{GroupAll}}
	var sizes []int
	for _, n := range []int{1, 4} {
		s, err := e.NewStream(p, JSON)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for i := 0; i < n; i++ {
			for _, c := range chunked(body, 64<<10) {
				if out, err = s.Write(out[:0], c); err != nil {
					t.Fatal(err)
				}
			}
			if _, err = s.Write(out[:0], []byte("\n")); err != nil {
				t.Fatal(err)
			}
		}
		sizes = append(sizes, s.retained())
	}
	t.Logf("retained per stream after 1 MiB: %d bytes, after 4 MiB: %d bytes", sizes[0], sizes[1])
	if sizes[1] > 64<<10 || sizes[1] > sizes[0]*2+4096 {
		t.Fatalf("retained memory grows with the body: %v", sizes)
	}
}

// Keys made of escapes only are bounded too; repeated filter members do
// not accumulate.
func TestBoundedKeysAndPredicates(t *testing.T) {
	e := testEngine(t)
	_, err := e.Mask(DefaultProfile(), JSON, []byte(`{"`+strings.Repeat(`\n`, 1<<20)+`":1}`))
	if !errors.Is(err, ErrUnmaskable) {
		t.Fatalf("escaped key: %v", err)
	}
	p := Profile{Fields: []Field{{Path: `items[?key=="s"].value`, Label: "v"}}}
	s, err := e.NewStream(p, JSON)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Write(nil, []byte(`{"items":[{`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if out, err = s.Write(out[:0], []byte(`"key":"abc",`)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = s.Write(out[:0], []byte(`"key":"s","value":"x"}]}`)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), `"value":"[MASKED:v]"}]}`) {
		t.Fatalf("got %s", out)
	}
	if n := s.retained(); n > 64<<10 {
		t.Fatalf("retained %d bytes", n)
	}
}

// A base64 value too long to hold whole is decoded as it streams; a secret
// inside ends the stream before its encoding is sent.
func TestLongBase64Secret(t *testing.T) {
	e := testEngine(t)
	r := rand.New(rand.NewPCG(3, 4))
	filler := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz .,\n"[r.IntN(30)]
		}
		return b
	}
	clean := base64.StdEncoding.EncodeToString(filler(60 << 10))
	out, err := e.Mask(DefaultProfile(), JSON, []byte(`{"data":"`+clean+`"}`))
	if err != nil || string(out) != `{"data":"`+clean+`"}` {
		t.Fatalf("clean long base64: %v", err)
	}
	payload := append(append(filler(30<<10), testPEM...), filler(30<<10)...)
	doc := []byte(`{"data":"` + base64.StdEncoding.EncodeToString(payload) + `"}`)
	for _, chunk := range []int{1, 4096, 64 << 10} {
		s, err := e.NewStream(DefaultProfile(), JSON)
		if err != nil {
			t.Fatal(err)
		}
		var sent []byte
		for _, c := range chunked(doc, chunk) {
			if sent, err = s.Write(sent, c); err != nil {
				break
			}
		}
		if err == nil {
			_, err = s.Close(sent)
		}
		if !errors.Is(err, ErrUnmaskable) {
			t.Fatalf("chunk %d: error %v, want ErrUnmaskable", chunk, err)
		}
		enc := bytes.TrimPrefix(sent, []byte(`{"data":"`))
		enc = enc[:len(enc)/4*4]
		dec, derr := base64.StdEncoding.DecodeString(string(enc))
		if derr != nil {
			t.Fatal(derr)
		}
		if bytes.Contains(dec, []byte("PRIVATE KEY")) || bytes.Contains(dec, []byte("MIIEow")) {
			t.Fatalf("chunk %d: part of the secret was sent before the error", chunk)
		}
	}
}

// Values remembered as clean never hide a secret: only clean values are
// remembered, and a value is matched on its whole content.
func TestCleanValueCache(t *testing.T) {
	e := testEngine(t)
	clean := `"https://www.googleapis.com/auth/cloud-platform"`
	secret := `"key ` + testAPIKey + `"`
	in := `[` + clean + `,` + secret + `,` + clean + `,` + secret + `,"key ` + testAPIKey[:38] + `x"]`
	out, err := e.Mask(DefaultProfile(), JSON, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` + clean + `,"key [MASKED:gcp_api_key]",` + clean + `,"key [MASKED:gcp_api_key]","key [MASKED:gcp_api_key]"]`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

// A string with escapes read in place is remembered as clean by its raw
// bytes. Those raw bytes, read as the decoded value of another string, may
// hold a secret: the two kinds of entry must never match each other.
func TestEscapedCleanCacheKeys(t *testing.T) {
	e := testEngine(t)
	tok := "npm_" + strings.Repeat("aB3", 12)
	// Decoded, the first value is a newline and "pm_...": clean. The
	// second (a \u escape keeps it off the in-place path) decodes to a
	// backslash and the raw bytes of the first: a token.
	in := `["\n` + tok[1:] + `","\u005c` + tok + `"]`
	want := `["\n` + tok[1:] + `","\\[MASKED:npm_token]"]`
	for _, size := range []int{len(in), 1, 7} {
		out := maskChunks(t, e, DefaultProfile(), JSON, chunked([]byte(in), size))
		if string(out) != want {
			t.Fatalf("chunks of %d:\n got  %s\nwant %s", size, out, want)
		}
	}
}

// Short values (11 to 16 bytes) are remembered as clean whole: a value
// that differs from a clean one in any single byte is scanned.
func TestShortCleanCacheExact(t *testing.T) {
	e := testEngine(t)
	for _, secret := range []string{"passwd=abcdef", "passwd=abcdefgh", "password: abcdef"} {
		for pos := range len(secret) {
			near := []byte(secret)
			near[pos] = '~'
			nearOut, err := e.Mask(DefaultProfile(), JSON, []byte(`"`+string(near)+`"`))
			if err != nil {
				t.Fatal(err)
			}
			in := `["` + string(near) + `","` + secret + `"]`
			out, err := e.Mask(DefaultProfile(), JSON, []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			want := `[` + string(nearOut) + `,"` + secret[:strings.IndexAny(secret, "=:")+1] + strings.Repeat(" ", strings.Count(secret, " ")) + `[MASKED:password_assignment]"]`
			if string(out) != want {
				t.Fatalf("after %q:\n got  %s\nwant %s", near, out, want)
			}
		}
	}
}

// strStop finds the first quote or backslash like a byte-by-byte search,
// at every length and position around the eight-byte steps.
func TestStrStop(t *testing.T) {
	naive := func(b []byte) int {
		for i, c := range b {
			if c == '"' || c == '\\' {
				return i
			}
		}
		return len(b)
	}
	alphabet := []byte{'a', '"', '\\', 0x00, 0x22 ^ 0x80, 0x5c ^ 0x80, 0xff, 0x21, 0x23, 0x5b, 0x5d, 0x01}
	seed := uint32(1)
	for n := 0; n < 200; n++ {
		for trial := 0; trial < 40; trial++ {
			b := make([]byte, n)
			for i := range b {
				seed = seed*1664525 + 1013904223
				// Mostly plain bytes, so that stops fall anywhere.
				if seed>>24 < 8 {
					b[i] = alphabet[1+int(seed>>8)%(len(alphabet)-1)]
				} else {
					b[i] = byte('a' + (seed>>16)%26)
				}
			}
			if got, want := strStop(b), naive(b); got != want {
				t.Fatalf("strStop(%q) = %d, want %d", b, got, want)
			}
		}
	}
}

// pairSet.skip stops where a byte-by-byte search over the set would, at
// every length and start around the seven-position steps.
func TestPairSkip(t *testing.T) {
	seed := uint64(1)
	next := func() uint64 {
		seed = seed*6364136223846793005 + 1442695040888963407
		return seed >> 33
	}
	for trial := 0; trial < 200; trial++ {
		var set pairSet
		// A few pairs over a small alphabet, so that hits fall anywhere.
		alphabet := []byte{'a', 'b', 'c', 0x00, 0xff, 0x80}
		for range 1 + next()%4 {
			x, y := alphabet[next()%6], alphabet[next()%6]
			k := uint16(x) | uint16(y)<<8
			set[k>>6] |= 1 << (k & 63)
		}
		naive := func(text []byte, i int) int {
			for ; i+1 < len(text); i++ {
				if set.has(uint16(text[i]) | uint16(text[i+1])<<8) {
					return i
				}
			}
			return max(i, len(text)-1)
		}
		for n := 0; n < 40; n++ {
			text := make([]byte, n)
			for i := range text {
				text[i] = alphabet[next()%6]
			}
			for i := 0; i <= n; i++ {
				if got, want := set.skip(text, i), naive(text, i); got != want {
					t.Fatalf("skip(%q, %d) = %d, want %d", text, i, got, want)
				}
			}
		}
	}
}

// hasAtShort reports '@' like a byte-by-byte search for every length it
// takes, wherever the '@' is and whatever the other bytes are.
func TestHasAtShort(t *testing.T) {
	for n := minMatchLen; n < minMatchNoAt; n++ {
		for _, fill := range []byte{'a', 0x00, 0xff, '@' ^ 0x80, '@' + 1, '@' - 1, 0x01} {
			b := bytes.Repeat([]byte{fill}, n)
			if hasAtShort(b) != hasAt(b) {
				t.Fatalf("hasAtShort(%q) = %v", b, hasAtShort(b))
			}
			for pos := range n {
				b := bytes.Repeat([]byte{fill}, n)
				b[pos] = '@'
				if !hasAtShort(b) {
					t.Fatalf("hasAtShort(%q) = false", b)
				}
			}
		}
	}
}

// Strings read in place (whole in one chunk) and strings assembled across
// chunks are masked alike.
func TestInPlaceStringsMatchChunked(t *testing.T) {
	e := testEngine(t)
	short := `"joe@acme.io"` // 10 bytes: below the short cache
	doc := []byte(`{"kind":"compute#instanceList","items":[` +
		`{"name":"web-1","email":"ops-team@acme.com","email2":"ops-team@acme.con","note":"key ` + testAPIKey + `",` +
		`"secret":"s3cr3t-value-123","password":"hunter22","a":` + short + `,"n":12345678901234567,"t":true,"z":null},` +
		`{"name":"web-1","email":"ops-team@acme.com","email2":"ops-team@acme.con","note":"key ` + testAPIKey + `",` +
		`"secret":"","list":["4111 1111 1111 1111","4111111111111111","ops-team@acme.com","x\"y\\n ` + testAPIKey + `"]}` +
		`],"selfLink":"https://user:pa55word@db.example.com/x"}`)
	for _, p := range []Profile{DefaultProfile(), {Detectors: []string{GroupAll}}, {Fields: []Field{{Path: "items[].email"}}, Detectors: []string{GroupPersonal}}} {
		want := maskChunks(t, e, p, JSON, chunked(doc, 1))
		if len(p.Fields) == 0 && bytes.Contains(want, []byte(testAPIKey)) {
			t.Fatalf("api key survived: %s", want)
		}
		for _, size := range []int{2, 3, 5, 13, 64, len(doc)} {
			got := maskChunks(t, e, p, JSON, chunked(doc, size))
			if !bytes.Equal(got, want) {
				t.Fatalf("profile %v, chunks of %d:\n got %s\nwant %s", p, size, got, want)
			}
		}
	}
}
