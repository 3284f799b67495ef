package masking

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The JSON lexer is checked on a corpus of tricky documents: escapes,
// numbers and literals cut at every byte, masked containers and scalars,
// strings and keys past their bounds, and documents broken at many
// places. Every document is masked whole and in pieces; each run's output
// (what write returned, before an error too), error and count of masked
// values are digested and compared with testdata/json_lexer.golden
// (rewritten by -update).

// lexRand is a small fixed generator (splitmix64): the corpus must not
// change with the standard library.
type lexRand uint64

func (r *lexRand) next() uint64 {
	*r += 0x9E3779B97F4A7C15
	z := uint64(*r)
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func (r *lexRand) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *lexRand) pick(s []string) string { return s[r.intn(len(s))] }

var lexKeys = []string{"value", "key", "a", "b", "c", "password", "data", "privateKeyData", "items", "metadata",
	"secret", "name", "email", "apiKey", "client_secret", "signature", "k\\n", "\\u0070assword", "pass\\/word", "", "x\\\"y"}

var lexStrPieces = []string{"plain", " ", "words here", "\\n", "\\\"", "\\\\", "\\/", "\\b\\f\\r\\t", "\\u00e9", "\\u00E9",
	"\\ud83d\\ude00", "\\ud800", "\\udc00", "\\ud800\\n", "\\ud800\\u0041", "\\u005c", "é", "@", "a@b",
	testAPIKey, testYa29, testEmail, testCard, testIBAN, testSSN, testStripe, testGitHub, testAWSID,
	"key=" + testAPIKey[:10], "passwd=abcdef", "password: hunter22",
	"https://user:pa55word@db.example.com/x", b64s("token " + testAPIKey), b64s("plain words only, nothing here"),
	"c2VjcmV0", "bGFzdC1obWFjLXNlY3JldC0xMjM0NTY3ODkw"}

var lexNumbers = []string{"0", "-0", "1", "-12", "3.14", "1e5", "1E+2", "-0.5e-3", "12345678901234567890", "0.0", "2E-0"}

func (r *lexRand) ws() string {
	if r.intn(4) != 0 {
		return ""
	}
	return r.pick([]string{" ", "\n", "\t", "\r\n  "})
}

func (r *lexRand) str() string {
	var b strings.Builder
	b.WriteByte('"')
	for range r.intn(5) {
		b.WriteString(r.pick(lexStrPieces))
	}
	b.WriteByte('"')
	return b.String()
}

func (r *lexRand) value(depth int) string {
	k := r.intn(10)
	if depth >= 4 && k < 4 {
		k += 4
	}
	switch k {
	case 0, 1:
		var b strings.Builder
		b.WriteString("{" + r.ws())
		for i := range r.intn(5) {
			if i > 0 {
				b.WriteString("," + r.ws())
			}
			b.WriteString(`"` + r.pick(lexKeys) + `"` + r.ws() + ":" + r.ws() + r.value(depth+1) + r.ws())
		}
		b.WriteString("}")
		return b.String()
	case 2, 3:
		var b strings.Builder
		b.WriteString("[" + r.ws())
		for i := range r.intn(5) {
			if i > 0 {
				b.WriteString("," + r.ws())
			}
			b.WriteString(r.value(depth+1) + r.ws())
		}
		b.WriteString("]")
		return b.String()
	case 4, 5, 6:
		return r.str()
	case 7, 8:
		return r.pick(lexNumbers)
	default:
		return r.pick([]string{"true", "false", "null"})
	}
}

// mutate breaks doc at one place: a byte dropped, changed or added, or
// the document cut short.
func (r *lexRand) mutate(doc string) string {
	if doc == "" {
		return "x"
	}
	i := r.intn(len(doc))
	c := r.pick([]string{"{", "}", "[", "]", `"`, ",", ":", `\`, "u", "t", "0", "-", ".", "e", "x", " ", "\x00", "\xff"})
	switch r.intn(4) {
	case 0:
		return doc[:i] + doc[i+1:]
	case 1:
		return doc[:i] + c + doc[i+1:]
	case 2:
		return doc[:i] + c + doc[i:]
	default:
		return doc[:i]
	}
}

type lexDoc struct {
	family string
	body   []byte
}

// lexCorpus gathers the documents, by family.
func lexCorpus(t *testing.T) []lexDoc {
	t.Helper()
	var docs []lexDoc
	add := func(family string, bodies ...string) {
		for _, b := range bodies {
			docs = append(docs, lexDoc{family, []byte(b)})
		}
	}

	// Inputs of the other tests.
	for _, dir := range []string{"testdata/corpus/*.json", "testdata/clean/*.json"} {
		files, err := filepath.Glob(dir)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, lexDoc{"files", b})
		}
	}
	seeds, err := filepath.Glob("testdata/fuzz/FuzzTokenizer/*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(seeds)
	for _, f := range seeds {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				add("tests", s)
			}
		}
	}
	add("tests",
		`{"a":[1,2.5e-3,true,null,"x\u00e9\n"],"password":"p4ssw0rd!"}`,
		`{"metadata":{"items":[{"key":"startup-script","value":"export KEY=`+testAPIKey+`"}]}}`,
		`["\ud83d\ude00","\ud800", -0, 1E+2]`,
		`{"payload":{"data":"c2VjcmV0","dataCrc32c":"1"}}`,
		`{"a":[{"b":{"privateKeyData":"v"}}],"privateKeyData":{"n":1}}`,
		`{"metadata":{"items":[{"key":"a","value":"1"},{"key":"startup-script","value":"2"}]}}`,
		`{"items":[{"value":"before","key":"s"}]}`,
		`{"env":[{"name":"A","value":"1"},{"name":"B","value":2}]}`,
		`{"a":{"x":{"c":1},"y":{"c":[1,2]}}}`, `{"a":{"b":null}}`, `{"a":{"b":true, "c" : 1.5e3}}`,
		`{"kind":"storage#hmacKey","secret":"bGFzdC1obWFjLXNlY3JldC0xMjM0NTY3ODkw","metadata":{"accessId":"GOOG1EXAMPLE","secret":"kept"}}`,
		`{"user":"bob","password":"plain-words","rootPassword":"","masterAuth":{"clientKey":"abc"},"passwordSet":true,"nextPageToken":"abc123"}`,
		`{"s":"line1\nkey `+testAPIKey[:4]+`\u0053`+testAPIKey[5:]+` \"q\" \ud83d\ude00"}`,
		`{"a":}`, `{"a" 1}`, `[1,]`, `{"a":"b"`, `tru`, `01`, `{"a":"\q"}`, `{"a":1]`, `[`, `"\u12"`,
		`{"k":"`+testAPIKey+`", x}`, `-`, `1.`, `{"a":"b"}}`,
		"{\"a\":1}\n{\"b\":\""+testAPIKey+"\"}\n",
		`["\n`+"pm_"+strings.Repeat("aB3", 12)+`","\u005cnpm_`+strings.Repeat("aB3", 12)+`"]`,
		`{"name":"projects/1/secrets/db/versions/3","payload":{"data":"`+b64s("hunter2-is-the-db-password")+`","dataCrc32c":"1"}}`,
		`{"password":"correcthorsebatterystaple12=="}`,
		`{"kind":"compute#instanceList","items":[{"name":"web-1","email":"ops-team@acme.com","note":"key `+testAPIKey+`",`+
			`"secret":"s3cr3t-value-123","password":"hunter22","a":"joe@acme.io","n":12345678901234567,"t":true,"z":null},`+
			`{"secret":"","list":["4111 1111 1111 1111","4111111111111111","x\"y\\n `+testAPIKey+`"]}],"selfLink":"https://user:pa55word@db.example.com/x"}`,
	)

	// Escapes, numbers and literals in every position (the chunkings cut
	// them at every byte).
	for _, esc := range []string{`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0041`, `\u00e9`, `\uD83D\uDE00`, `\ud800`, `\udfff`,
		`\ud800\n`, `\ud800\ud800\udc00`, `\u12`, `\u12g4`, `\x`, `\`, `\u`, `\uZZZZ`} {
		add("escapes", `"`+esc+`"`, `["a`+esc+`b",1]`, `{"k`+esc+`":"v`+esc+`"}`, `{"password":"p`+esc+`w"}`,
			`{"value":"`+esc+testAPIKey+`"}`, `{"secret":{"x":"`+esc+`"}}`, `["`+testAPIKey+esc+`"]`)
	}
	for _, n := range append(lexNumbers, "-", "01", "1.", "1e", "1e+", ".5", "+1", "1.e5", "--1", "1ee2", "0x1", "1.5.5", "-a") {
		add("numbers", n, n+" ", "["+n+"]", "["+n+","+n+"]", `{"n":`+n+`}`, `{"value":`+n+`}`, `{"secret":`+n+`,"b":1}`,
			`{"secret":`+n+`}`, `{"a":{"b":`+n+`},"k":"`+testAPIKey+`"}`, n+"\n"+n)
	}
	for _, l := range []string{"true", "false", "null", "tru", "nul", "fals", "truex", "nulll", "t", "True", "nUll"} {
		add("literals", l, l+" ", "["+l+"]", `{"l":`+l+`}`, `{"value":`+l+`}`, `{"secret":`+l+`}`, `{"password":`+l+`,"b":"`+testAPIKey+`"}`,
			`{"a":{"b":`+l+`}}`, l+l)
	}

	// Masked containers and scalars.
	add("suppressed",
		`{"secret":{"a":[1,"`+testAPIKey+`",{"b":"x\"}"}],"c":"\u0041"},"after":"`+testAPIKey+`"}`,
		`{"secret":[[],[[]],{},{"secret":{"secret":1}}],"n":2}`,
		`{"secret":"","x":1}`, `{"secret":"`+testAPIKey+`"}`, `{"secret":"a\nb\u0041"}`,
		`{"metadata":{"items":[{"key":"k","value":{"deep":["`+testYa29+`"]}},{"value":[1,2,3]}]}}`,
		`{"items":[{"metadata":{"x":"y"},"name":"x","b":"z"},{"metadata":[1,{"q":null}]}]}`,
		`{"a":{"x":{"c":{"d":[1,2]}},"y":{"c":"`+testAPIKey+`"}}}`,
		`{"privateKeyData":"`+b64s("-----BEGIN PRIVATE KEY-----")+`","data":"c2VjcmV0c2VjcmV0c2VjcmV0"}`,
		`{"data":"c2VjcmV0c2VjcmV0c2VjcmV0","signature":"`+b64s(testAPIKey)+`","payload":{"data":"YWJjZA=="}}`,
		`{"data":"not base64 at all, just words","data":"YWJj_-ZA","data":"YWJj+/ZA====","data":"`+b64s(testAPIKey)+`"}`,
		`{"password":{"x":[1,2]},"apiKey":["a","b"],"client_secret":null,"idToken":true,"refresh_token":12}`,
		`{"secret":{"a":1]`, `{"secret":[1,2}`, `{"secret":{"a":"\q"}}`, `{"secret":{"a":1}`,
		`{"a":[{"key":"k","b":"`+testAPIKey+`"},{"b":"1","key":"k"},{"key":"j","b":"2"}]}`,
		`{"a":[{"key":"k\n","b":"1"},{"key":"\u006b","b":"2"},{"key":"`+strings.Repeat("k", 300)+`","b":"3"}]}`,
	)

	// Strings past maxShortString, keys past maxKeyLen.
	long := strings.Repeat("boot ok \\n\\t \\\"quoted\\\" ", maxShortString/20)
	plain := strings.Repeat("abcdefghij", maxShortString/10+3)
	add("long",
		`{"contents":"`+long+testYa29+` `+long[:3000]+`","next":"1"}`,
		`{"contents":"`+plain+`"}`,
		`["`+plain+testAPIKey+plain[:5000]+`","`+plain[:8000]+`\u00e9\ud83d\ude00`+plain[:9000]+`"]`,
		`["`+plain[:maxShortString-1]+`","`+plain[:maxShortString]+`","`+plain[:maxShortString+1]+`"]`,
		`["`+plain[:maxShortString-2]+`\n","`+plain[:maxShortString-1]+`\u0041x"]`,
		`{"secret":"`+plain+`","password":"`+long+`","data":"`+b64s(plain[:12400])+`"}`,
		`{"secret":{"a":"`+plain+`"},"b":"`+plain+`\q"}`,
		`["`+plain+`\ud800"]`, `["`+plain+`\ud800\udc00`+plain[:100]+`"]`, `["`+plain+`\u12`,
		`{"data":"`+b64s(plain[:6000]+testAPIKey+plain[:6500])+`"}`,
		`{"`+strings.Repeat("k", maxKeyLen)+`":1}`,
		`{"`+strings.Repeat("k", maxKeyLen+1)+`":1}`,
		`{"`+strings.Repeat("k", maxKeyLen-1)+`\n":1}`,
		`{"`+strings.Repeat("k", maxKeyLen)+`\n":1}`,
		`{"`+strings.Repeat(`\n`, maxKeyLen/2+1)+`":1}`,
		`{"`+strings.Repeat(`\u0041`, maxKeyLen/6+1)+`":1}`,
		`{"secret":{"`+strings.Repeat("k", maxKeyLen+10)+`":1}}`,
		`"`+plain+`"`+" "+`"`+plain,
	)
	add("depth", strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth), strings.Repeat("[", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth)+"1"+strings.Repeat("}", maxDepth))

	// Several top-level values, and whitespace.
	add("lines", "", " ", "\n\n", "1 2", "1\n2\n", `"a""b"`, `{}{}`, `[][]`, `{} []`, "true false", `"a"1`, "1\"a\"",
		" {\"a\" : [ 1 , 2 ] } \n", "\t\r\n[\t\r\n]\t\r\n", "{,}", "[,1]", `{"a":1,}`, `{"a"}`, "{\"a\"\n:\n1}")

	// Random documents, and each broken at one place.
	r := lexRand(1)
	var random []string
	for range 300 {
		random = append(random, r.value(0))
	}
	add("random", random...)
	for i := range 600 {
		add("broken", r.mutate(random[i%len(random)]))
	}
	return docs
}

// lexProfiles are the rule sets the corpus is masked with.
func lexProfiles() []struct {
	name string
	p    Profile
} {
	return []struct {
		name string
		p    Profile
	}{
		{"default", DefaultProfile()},
		{"all", DefaultProfile().Merge(Profile{Detectors: []string{GroupAll},
			Fields: []Field{{Path: "**.value", Label: "v"}, {Path: `a[?key=="k"].b`, Label: "b"}}})},
		{"fields", Profile{Detectors: []string{GroupPersonal}, Fields: []Field{
			{Path: "items[].metadata", Label: "m"}, {Path: "**.data", Label: "d"}, {Path: `items[?name=="x"].b`},
			{Path: "a.*.c"}, {Path: "password"}}}},
	}
}

// lexResult is one run: what write and close returned, error included.
type lexResult struct {
	out    []byte
	err    error
	masked int
}

func lexRun(t testing.TB, e *Engine, p Profile, pieces [][]byte) lexResult {
	s, err := e.NewStream(p, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, c := range pieces {
		if out, err = s.json.write(out, c); err != nil {
			return lexResult{out, err, s.Masked()}
		}
	}
	out, err = s.json.close(out)
	return lexResult{out, err, s.Masked()}
}

// lexChunkings are the ways a document is cut; splits cuts it in two at
// every byte (short documents only).
var lexChunkings = []struct {
	name string
	size int
}{{"whole", 0}, {"1", 1}, {"2", 2}, {"3", 3}, {"7", 7}, {"64", 64}, {"splits", -1}}

const lexMaxSplitDoc = 400

func lexPieces(body []byte, size int) [][]byte {
	if size == 0 {
		return [][]byte{body}
	}
	return chunked(body, size)
}

// TestJSONLexer: the output of the lexer does not depend on how the body
// is cut, nor does its error; and every run's output, error and count, per
// profile, family and chunking, matches the digests of
// testdata/json_lexer.golden.
func TestJSONLexer(t *testing.T) {
	e := testEngine(t)
	docs := lexCorpus(t)
	var families []string
	byFamily := map[string][][]byte{}
	for _, d := range docs {
		if byFamily[d.family] == nil {
			families = append(families, d.family)
		}
		byFamily[d.family] = append(byFamily[d.family], d.body)
	}
	var got bytes.Buffer
	for _, prof := range lexProfiles() {
		for _, fam := range families {
			wholes := make([]lexResult, len(byFamily[fam]))
			for _, ch := range lexChunkings {
				if fam == "long" && ch.size > 0 && ch.size < 3 {
					// Chunks of 3 and 7 already cut the long strings'
					// escapes at every byte.
					continue
				}
				h := sha256.New()
				for i, body := range byFamily[fam] {
					check := func(how string, r lexResult) {
						t.Helper()
						errs := ""
						if r.err != nil {
							errs = r.err.Error()
						}
						fmt.Fprintf(h, "%d:%s|%d:%s|%d\n", len(r.out), r.out, len(errs), errs, r.masked)
						if ch.size == 0 {
							wholes[i] = r
							return
						}
						whole := wholes[i]
						switch {
						case (whole.err == nil) != (r.err == nil):
							t.Errorf("%s %s %.80q cut %s: error %v, whole %v", prof.name, fam, body, how, r.err, whole.err)
						case whole.err == nil && (!bytes.Equal(r.out, whole.out) || r.masked != whole.masked):
							t.Errorf("%s %s %.80q cut %s: output differs:\n%s", prof.name, fam, body, how, firstDiff(whole.out, r.out))
						case whole.err != nil && !sameLexError(whole.err, r.err):
							t.Errorf("%s %s %.80q cut %s: error %q, whole %q", prof.name, fam, body, how, r.err, whole.err)
						}
					}
					switch {
					case ch.size >= 0:
						check(ch.name, lexRun(t, e, prof.p, lexPieces(body, ch.size)))
					case len(body) <= lexMaxSplitDoc:
						for k := 1; k < len(body); k++ {
							check(fmt.Sprint("at ", k), lexRun(t, e, prof.p, [][]byte{body[:k], body[k:]}))
						}
					}
				}
				fmt.Fprintf(&got, "%s %s %s %s\n", prof.name, fam, ch.name, hex.EncodeToString(h.Sum(nil)[:12]))
			}
		}
	}
	const golden = "testdata/json_lexer.golden"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
	if len(wl) != len(gl) {
		t.Fatalf("%d digests, golden has %d", len(gl), len(wl))
	}
	for i := range wl {
		if wl[i] != gl[i] {
			t.Errorf("digest differs:\n got  %s\nwant %s", gl[i], wl[i])
		}
	}
}

// sameLexError compares the errors of two cuts of one document: the same
// error, except that a key found too long is reported where the run of
// its bytes that crossed the bound started, which depends on the cut.
func sameLexError(a, b error) bool {
	if errors.Is(a, ErrUnmaskable) && strings.Contains(a.Error(), "object key longer") {
		return errors.Is(b, ErrUnmaskable) && strings.Contains(b.Error(), "object key longer")
	}
	return a.Error() == b.Error()
}
