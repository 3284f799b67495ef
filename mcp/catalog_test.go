package mcp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp"
)

func newTestRecognizer(t testing.TB) *Recognizer {
	t.Helper()
	return NewRecognizer(gcp.NewRecognizer(gcp.DefaultCatalog(), nil), DefaultCatalog(), NewRegistry(0, 0))
}

// toolCall builds the recognised form of a POST carrying one tools/call.
func toolCall(t testing.TB, host, tool string, args map[string]any, headers map[string]string) HTTPRequest {
	t.Helper()
	body := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": args}}
	return post(t, host, body, headers)
}

func post(t testing.TB, host string, body any, headers map[string]string) HTTPRequest {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if headers == nil {
		headers = map[string]string{}
	}
	return HTTPRequest{Method: "POST", Host: host, Path: "/mcp", Headers: headers, Body: v, RawBody: raw}
}

// sampleArgs fills every placeholder of a template with a plausible value.
func sampleArgs(tpl *template) map[string]any {
	args := map[string]any{}
	for _, p := range tpl.parts {
		if p.arg == nil {
			continue
		}
		v := "acme-dev"
		if p.reserved {
			switch last := p.arg[len(p.arg)-1]; last {
			case "parent":
				v = "projects/acme-dev/locations/us-east1"
			default:
				v = "projects/acme-dev/locations/us-east1/things/x"
			}
		}
		cur := args
		for _, k := range p.arg[:len(p.arg)-1] {
			next, ok := cur[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[k] = next
			}
			cur = next
		}
		cur[p.arg[len(p.arg)-1]] = v
	}
	return args
}

// Every REST mapping of the catalog names a method of the gcp catalog.
func TestCatalogMapsToKnownMethods(t *testing.T) {
	r := newTestRecognizer(t)
	for _, server := range DefaultCatalog().Servers() {
		for _, tool := range DefaultCatalog().Tools(server) {
			if tool.rest == nil {
				continue
			}
			host := server + ".googleapis.com"
			args := sampleArgs(tool.rest)
			if tool.rest.parts[0].lit == "v1/" && server == "container" || server == "logging" || server == "run" && strings.Contains(tool.rest.src, "{+") {
				// Resource names of these APIs have their own shapes.
				args = resourceNameArgs(server, tool.Name)
			}
			req, err := r.Recognize(toolCall(t, host, tool.Name, args, nil))
			if err != nil {
				t.Errorf("%s/%s: %v", server, tool.Name, err)
				continue
			}
			c := req.Calls[0]
			if c.REST == nil || c.REST.Operation.Method != tool.Method() {
				t.Errorf("%s/%s (%s, args %v): unmapped: %s", server, tool.Name, tool.rest.src, args, c.Unmapped)
			}
			if op, ok := r.Skeleton(tool); !ok || op.Method != tool.Method() || op.ReadOnly != c.REST.Operation.ReadOnly {
				t.Errorf("%s/%s: skeleton %+v", server, tool.Name, op)
			}
		}
	}
}

func resourceNameArgs(server, tool string) map[string]any {
	switch server + "/" + tool {
	case "container/get_cluster":
		return map[string]any{"name": "projects/acme-dev/locations/us-east1/clusters/main"}
	case "container/get_operation":
		return map[string]any{"name": "projects/acme-dev/locations/us-east1/operations/op-1"}
	case "container/list_clusters", "container/list_operations":
		return map[string]any{"parent": "projects/acme-dev/locations/us-east1"}
	case "logging/get_bucket":
		return map[string]any{"name": "projects/acme-dev/locations/global/buckets/_Default"}
	case "logging/get_view":
		return map[string]any{"name": "projects/acme-dev/locations/global/buckets/_Default/views/_AllLogs"}
	case "logging/list_views":
		return map[string]any{"parent": "projects/acme-dev/locations/global/buckets/_Default"}
	case "logging/list_buckets":
		return map[string]any{"parent": "projects/acme-dev/locations/global"}
	case "logging/list_log_names":
		return map[string]any{"parent": "projects/acme-dev"}
	case "logging/list_log_entries":
		return map[string]any{"resourceNames": []any{"projects/acme-dev"}}
	case "run/get_service":
		return map[string]any{"name": "projects/acme-dev/locations/us-east1/services/api"}
	case "run/deploy_service_from_image", "run/deploy_service_from_archive":
		return map[string]any{"service": map[string]any{"name": "projects/acme-dev/locations/us-east1/services/api"}}
	}
	return nil
}

// One test per server: a tool call sets gcp.* as its REST twin would.
func TestServerMappings(t *testing.T) {
	r := newTestRecognizer(t)
	type want struct {
		method, project, location, resource string
		readonly                            bool
	}
	cases := []struct {
		server, tool string
		args         map[string]any
		want         want
	}{
		{"compute", "delete_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"},
			want{"compute.instances.delete", "acme-prod", "us-east1-b", "projects/acme-prod/zones/us-east1-b/instances/web-1", false}},
		{"compute", "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b"},
			want{"compute.instances.list", "acme-dev", "us-east1-b", "projects/acme-dev/zones/us-east1-b", true}},
		{"compute", "stop_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"},
			want{"compute.instances.stop", "acme-prod", "us-east1-b", "projects/acme-prod/zones/us-east1-b/instances/web-1", false}},
		{"bigquery", "execute_sql", map[string]any{"projectId": "acme-prod", "query": "SELECT 1"},
			want{"bigquery.jobs.query", "acme-prod", "", "projects/acme-prod", false}},
		{"bigquery", "get_table_info", map[string]any{"projectId": "acme-dev", "datasetId": "sales", "tableId": "orders"},
			want{"bigquery.tables.get", "acme-dev", "", "projects/acme-dev/datasets/sales/tables/orders", true}},
		{"container", "get_cluster", map[string]any{"name": "projects/acme-prod/locations/us-east1/clusters/main"},
			want{"container.projects.locations.clusters.get", "acme-prod", "us-east1", "projects/acme-prod/locations/us-east1/clusters/main", true}},
		{"run", "deploy_service_from_image", map[string]any{"service": map[string]any{"name": "projects/acme-prod/locations/us-east1/services/api"}},
			want{"run.projects.locations.services.patch", "acme-prod", "us-east1", "projects/acme-prod/locations/us-east1/services/api", false}},
		{"run", "list_services", map[string]any{"project": "acme-dev", "region": "us-east1"},
			want{"run.projects.locations.services.list", "acme-dev", "us-east1", "projects/acme-dev/locations/us-east1", true}},
		{"sqladmin", "execute_sql", map[string]any{"project": "acme-prod", "instance": "orders", "sqlStatement": "DROP TABLE x"},
			want{"sql.instances.executeSql", "acme-prod", "", "projects/acme-prod/instances/orders", false}},
		{"sqladmin", "get_instance", map[string]any{"project": "acme-dev", "instance": "orders"},
			want{"sql.instances.get", "acme-dev", "", "projects/acme-dev/instances/orders", true}},
		{"logging", "list_log_entries", map[string]any{"resourceNames": []any{"projects/acme-prod"}, "filter": "severity>=ERROR"},
			want{"logging.entries.list", "", "", "", true}},
		{"logging", "get_bucket", map[string]any{"name": "projects/acme-dev/locations/global/buckets/_Default"},
			want{"logging.projects.locations.buckets.get", "acme-dev", "global", "projects/acme-dev/locations/global/buckets/_Default", true}},
		{"cloudresourcemanager", "search_projects", map[string]any{"query": "parent:folders/223"},
			want{"cloudresourcemanager.projects.search", "", "", "", true}},
	}
	for _, tc := range cases {
		t.Run(tc.server+"/"+tc.tool, func(t *testing.T) {
			req, err := r.Recognize(toolCall(t, tc.server+".googleapis.com", tc.tool, tc.args, nil))
			if err != nil {
				t.Fatal(err)
			}
			c := req.Calls[0]
			if req.Server != tc.server {
				t.Errorf("server %q", req.Server)
			}
			if c.REST == nil {
				t.Fatalf("unmapped: %s", c.Unmapped)
			}
			op := c.Operation(req)
			got := want{op.Method, op.Project, op.Location, op.Resource, op.ReadOnly}
			if got != tc.want {
				t.Errorf("operation\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A tool of a regional endpoint maps to the REST method at the same
// regional host.
func TestRegionalEndpoint(t *testing.T) {
	r := newTestRecognizer(t)
	req, err := r.Recognize(toolCall(t, "compute.us-east1.rep.googleapis.com", "delete_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if req.Server != "compute" || req.Region != "us-east1" {
		t.Fatalf("server %q region %q", req.Server, req.Region)
	}
	if c := req.Calls[0]; c.REST == nil || c.REST.Operation.Method != "compute.instances.delete" {
		t.Fatalf("call %+v", c)
	}
}

// Arguments that would change the REST path's structure are refused; a
// missing one leaves the call unmapped.
func TestToolArgumentsCannotReshapeThePath(t *testing.T) {
	r := newTestRecognizer(t)
	for _, args := range []map[string]any{
		{"project": "acme-prod", "zone": "us-east1-b/instances/db-1/..", "name": "web-1"},
		{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1/../../../../global/images/x"},
		{"project": "acme-prod", "zone": "us-east1-b", "name": ".."},
		{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1?requestId=x"},
		{"project": "acme-prod", "zone": "us-east1-b", "name": "web%2F1"},
		{"project": "acme-prod", "zone": "us-east1-b", "name": map[string]any{"x": 1}},
	} {
		_, err := r.Recognize(toolCall(t, "compute.googleapis.com", "delete_instance", args, nil))
		var re *RequestError
		if !asRequestError(err, &re) || re.Code != CodeInvalidParams {
			t.Errorf("args %v: got %v, want an invalid-params refusal", args, err)
		}
	}
	for _, args := range []map[string]any{
		{"project": "acme-prod", "name": "web-1"},
		{"project": "acme-prod", "zone": "", "name": "web-1"},
	} {
		req, err := r.Recognize(toolCall(t, "compute.googleapis.com", "delete_instance", args, nil))
		if err != nil {
			t.Fatal(err)
		}
		if c := req.Calls[0]; c.REST != nil || !strings.Contains(c.Unmapped, "zone") {
			t.Errorf("args %v: %+v", args, c)
		}
	}
	// A resource name of another kind is another method: refused.
	_, err := r.Recognize(toolCall(t, "run.googleapis.com", "deploy_service_from_image", map[string]any{"service": map[string]any{"name": "projects/acme-prod/locations/us-east1/jobs/nightly"}}, nil))
	if re, ok := err.(*RequestError); !ok || !strings.Contains(re.Msg, "does not act on") {
		t.Errorf("a job's name for a service: %v", err)
	}
	// A reserved placeholder may hold '/', never a dot segment.
	_, err = r.Recognize(toolCall(t, "container.googleapis.com", "get_cluster", map[string]any{"name": "projects/acme-dev/locations/us-east1/clusters/../../../x"}, nil))
	var re *RequestError
	if !asRequestError(err, &re) {
		t.Errorf("dot segments in a resource name: %v", err)
	}
}

func asRequestError(err error, target **RequestError) bool {
	re, ok := err.(*RequestError)
	if ok {
		*target = re
	}
	return ok
}

// Unknown tools have no hints; catalog hints and learned hints apply, the
// learned ones first.
func TestToolHints(t *testing.T) {
	r := newTestRecognizer(t)
	req, err := r.Recognize(toolCall(t, "compute.googleapis.com", "launch_rockets", map[string]any{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := req.Calls[0]; c.ReadOnly || !c.Destructive || c.REST != nil || c.Tool != nil {
		t.Fatalf("unknown tool: %+v", c)
	}
	req, _ = r.Recognize(toolCall(t, "compute.googleapis.com", "list_instances", map[string]any{"project": "p", "zone": "z"}, nil))
	if c := req.Calls[0]; !c.ReadOnly || c.Destructive {
		t.Fatalf("catalog hints: %+v", c)
	}
	f, tr := false, true
	r.Registry().Learn("compute.googleapis.com", []*Tool{{Name: "list_instances", Source: "server", HeadersKnown: true, Hints: Hints{ReadOnly: &f, Destructive: &tr}}})
	req, _ = r.Recognize(toolCall(t, "compute.googleapis.com", "list_instances", map[string]any{"project": "p", "zone": "z"}, nil))
	if c := req.Calls[0]; c.ReadOnly || !c.Destructive || c.REST == nil {
		t.Fatalf("learned hints do not win, or the mapping was lost: %+v", c)
	}
}

func Example_mapping() {
	r := NewRecognizer(gcp.NewRecognizer(gcp.DefaultCatalog(), nil), nil, nil)
	body := map[string]any{"jsonrpc": "2.0", "id": float64(7), "method": "tools/call",
		"params": map[string]any{"name": "delete_instance", "arguments": map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}}}
	req, _ := r.Recognize(HTTPRequest{Method: "POST", Host: "compute.googleapis.com", Path: "/mcp", Headers: map[string]string{}, Body: body})
	op := req.Calls[0].Operation(req)
	fmt.Println(op.Method, op.Project, op.ReadOnly)
	// Output: compute.instances.delete acme-prod false
}
