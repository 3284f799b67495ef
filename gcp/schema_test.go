package gcp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
	"github.com/airlockhq/airlock/gcp/internal/schemagen"
)

// Policies see one spelling of a request, the Discovery one, whatever
// spelling Google's parser would also have accepted.
func TestNormalizeBody(t *testing.T) {
	runPatch := Operation{Service: "run", Version: "v2", Method: "run.projects.locations.services.patch"}
	diskInsert := Operation{Service: "compute", Version: "v1", Method: "compute.disks.insert"}
	setMetadata := Operation{Service: "compute", Version: "v1", Method: "compute.instances.setMetadata"}
	unknown := Operation{Service: "compute"}
	tests := []struct {
		name    string
		op      Operation
		body    string
		want    string // JSON of the normalised body
		refused string
	}{
		{name: "snake_case field", op: runPatch, body: `{"invoker_iam_disabled":true}`, want: `{"invokerIamDisabled":true}`},
		{name: "quoted boolean", op: runPatch, body: `{"invokerIamDisabled":"true"}`, want: `{"invokerIamDisabled":true}`},
		{name: "quoted boolean under snake_case", op: runPatch, body: `{"invoker_iam_disabled":"false"}`, want: `{"invokerIamDisabled":false}`},
		{name: "both spellings", op: runPatch, body: `{"invokerIamDisabled":false,"invoker_iam_disabled":true}`, refused: "gives the field invokerIamDisabled twice"},
		{name: "enum name", op: runPatch, body: `{"ingress":"INGRESS_TRAFFIC_ALL"}`, want: `{"ingress":"INGRESS_TRAFFIC_ALL"}`},
		{name: "enum number", op: runPatch, body: `{"ingress":1}`, refused: "enum field ingress as a number"},
		{name: "map keys are data", op: runPatch, body: `{"labels":{"cost_center":"x","env":"prod"}}`, want: `{"labels":{"cost_center":"x","env":"prod"}}`},
		{name: "nested snake_case", op: runPatch, body: `{"template":{"max_instance_request_concurrency":"80"}}`,
			want: `{"template":{"maxInstanceRequestConcurrency":80}}`},
		{name: "int64 as a number", op: diskInsert, body: `{"sizeGb":10,"size_gb_x":1}`, want: `{"sizeGb":"10","size_gb_x":1}`},
		{name: "int64 too large", op: diskInsert, body: `{"sizeGb":1e300}`, refused: "64-bit field sizeGb"},
		{name: "array items", op: setMetadata, body: `{"items":[{"key":"startup-script","value":"x"}],"fingerprint":"abc"}`,
			want: `{"fingerprint":"abc","items":[{"key":"startup-script","value":"x"}]}`},
		{name: "unknown method keeps keys", op: unknown, body: `{"a_b":1,"c":{"d_e":2}}`, want: `{"a_b":1,"c":{"d_e":2}}`},
		{name: "unknown method mixing spellings", op: unknown, body: `{"c":{"dE":1,"d_e":2}}`, refused: "in two spellings"},
		{name: "unknown field mixing spellings", op: runPatch, body: `{"mystery":{"fooBar":1,"foo_bar":2}}`, refused: "in two spellings"},
		{name: "scalar body", op: runPatch, body: `"x"`, want: `"x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := parseStrictJSON([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := normalizeBody(tc.op, v)
			if tc.refused != "" {
				var re *RequestError
				if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.refused) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _, _ := parseStrictJSON([]byte(tc.want))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("normalised = %#v, want %#v", got, want)
			}
		})
	}
}

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"invoker_iam_disabled": "invokerIamDisabled",
		"ipv6_address":         "ipv6Address",
		"already":              "already",
		"alreadyCamel":         "alreadyCamel",
		"trailing_":            "trailing",
		"double__under":        "doubleUnder",
		"x_1":                  "x1",
	} {
		if got := lowerCamel(in); got != want {
			t.Errorf("lowerCamel(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every method of the catalog that takes a body resolves to a schema whose
// references all resolve: a broken table would silently skip normalising.
func TestRequestSchemasResolve(t *testing.T) {
	tab, err := requestSchemas()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.methods) < 5000 {
		t.Fatalf("only %d methods with request schemas", len(tab.methods))
	}
	checked := map[*docSchemas]bool{}
	for key := range tab.methods {
		version, id, _ := strings.Cut(key, " ")
		s, view, err := tab.schemaFor(version, id)
		if err != nil || s == nil {
			t.Fatalf("%s: schema %v, err %v", key, s, err)
		}
		if checked[view.d] {
			continue
		}
		checked[view.d] = true
		for name := range view.d.raw {
			var refs []string
			var walk func(*schemagen.Schema)
			walk = func(x *schemagen.Schema) {
				if x == nil {
					return
				}
				if x.Ref != "" {
					refs = append(refs, x.Ref)
				}
				for _, p := range x.Props {
					walk(p)
				}
				walk(x.Items)
				walk(x.Map)
			}
			walk(view.get(name))
			for _, r := range refs {
				if view.get(r) == nil {
					t.Fatalf("%s: schema %s refers to missing %s", key, name, r)
				}
			}
		}
	}
}

// TestRequestSchemasUpToDate regenerates the request schemas from the
// google.golang.org/api module pinned in go.mod and fails when the
// embedded file differs.
func TestRequestSchemasUpToDate(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("locate google.golang.org/api (run go mod download): %v", err)
	}
	files, err := catalogen.ModuleDocuments(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := schemagen.Generate(files)
	if err != nil {
		t.Fatal(err)
	}
	var fresh bytes.Buffer
	if err := schemagen.EncodeLines(&fresh, docs); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(schemaData))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh.Bytes(), embedded) {
		t.Fatalf("schemas.jsonl.gz is stale (first difference at line %d); run: go generate ./gcp", firstDiffLine(fresh.Bytes(), embedded))
	}
}

// A refusal names the same field whatever order the map is visited in:
// the body is parsed anew each time, so map order differs between runs.
func TestNormalizeRefusalIsDeterministic(t *testing.T) {
	unknown := Operation{Service: "compute"}
	for _, tc := range []struct{ body, want string }{
		{`{"z":{"a_b":1,"aB":2},"c":{"x_y":1,"xY":2},"m":{"n_o":1,"nO":2}}`, `field c.xY in two spellings ("xY" and "x_y")`},
		{`{"a_b_c":1,"aBC":2,"a_bC":3}`, `field aBC in two spellings ("aBC" and "a_bC")`},
		{`{"k":[{"q":1},{"p_q":1,"pQ":2}],"j":{"s_t":1,"sT":2}}`, `field j.sT in two spellings`},
	} {
		var first string
		for i := 0; i < 50; i++ {
			v, _, err := parseStrictJSON([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = normalizeBody(unknown, v)
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%s: err = %v, want a refusal", tc.body, err)
			}
			if i == 0 {
				first = re.Msg
				if !strings.Contains(first, tc.want) {
					t.Fatalf("%s: %q, want it to contain %q", tc.body, first, tc.want)
				}
			} else if re.Msg != first {
				t.Fatalf("%s: the refusal changed between runs:\n%s\n%s", tc.body, first, re.Msg)
			}
		}
	}
}
