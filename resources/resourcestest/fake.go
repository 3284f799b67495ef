// Package resourcestest is an in-process fake of the Google APIs that
// package resources reads: Resource Manager v3 (projects, folders,
// organizations, effective tags), Cloud Storage buckets.get, Compute Engine
// instances.get and disks.get, Secret Manager secrets.get and Cloud SQL
// instances.get, answering in the response shapes of their Discovery
// documents. Every service is served at one base URL (point each
// resources endpoint at URL()). Tests change the world while it runs and
// count the calls it receives.
package resourcestest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Project is a project of the fake world.
type Project struct {
	ID, Number, DisplayName string
	// Parent is "folders/ID" or "organizations/ID".
	Parent string
	Labels map[string]string
	// Tags are effective tags as namespaced key -> short value
	// ("123456/env" -> "production"); inherited ones included.
	Tags map[string]string
}

// Node is a folder or an organization.
type Node struct {
	DisplayName string
	// Parent is the folder or organization above a folder.
	Parent string
}

// Bucket is a Cloud Storage bucket.
type Bucket struct {
	ProjectNumber string
	Labels        map[string]string
}

// Fake is the fake Google.
type Fake struct {
	srv *httptest.Server

	mu        sync.Mutex
	projects  map[string]*Project // by id and by number
	nodes     map[string]Node     // "folders/1", "organizations/2"
	buckets   map[string]Bucket
	labelled  map[string]map[string]string // resource path -> labels (instances, disks, secrets, SQL)
	failures  map[string]int               // path prefix -> HTTP status
	delay     time.Duration
	hits      map[string]int // endpoint kind -> calls
	authSeen  []string
	totalHits int
	iam       map[string]map[string]any // resource path -> IAM policy (iam.go)
}

// New starts a fake and stops it when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{
		projects: map[string]*Project{},
		nodes:    map[string]Node{},
		buckets:  map[string]Bucket{},
		labelled: map[string]map[string]string{},
		failures: map[string]int{},
		hits:     map[string]int{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL of every fake service.
func (f *Fake) URL() string { return f.srv.URL }

// Endpoints maps every service resources reads to this fake.
func (f *Fake) Endpoints() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"cloudresourcemanager", "storage", "compute", "secretmanager", "sqladmin"} {
		m[s] = f.srv.URL
	}
	return m
}

// AddProject adds or replaces a project.
func (f *Fake) AddProject(p Project) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := p
	f.projects[p.ID] = &cp
	f.projects[p.Number] = &cp
}

// SetProjectLabels replaces a project's labels, as an edit in the console would.
func (f *Fake) SetProjectLabels(idOrNumber string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.projects[idOrNumber]; p != nil {
		p.Labels = labels
	}
}

// AddNode adds a folder or organization ("folders/1").
func (f *Fake) AddNode(name string, n Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[name] = n
}

// AddBucket adds a bucket.
func (f *Fake) AddBucket(name string, b Bucket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[name] = b
}

// SetLabels sets the labels of an instance, disk, secret or SQL instance
// by its resource path: projects/P/zones/Z/instances/I,
// projects/P/zones/Z/disks/D, projects/P/secrets/S, projects/P/instances/I.
func (f *Fake) SetLabels(path string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.labelled[path] = labels
}

// Fail answers status to every request whose path starts with prefix
// (0 removes the failure).
func (f *Fake) Fail(prefix string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status == 0 {
		delete(f.failures, prefix)
		return
	}
	f.failures[prefix] = status
}

// SetDelay delays every answer.
func (f *Fake) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Hits returns the calls received by kind: project, folder, organization,
// tags, bucket, instance, disk, secret, sql_instance.
func (f *Fake) Hits(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[kind]
}

// TotalHits returns every call received.
func (f *Fake) TotalHits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.totalHits
}

// Authorizations returns the Authorization headers received, in order.
func (f *Fake) Authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authSeen...)
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	delay := f.delay
	f.totalHits++
	f.authSeen = append(f.authSeen, r.Header.Get("Authorization"))
	status := 0
	for prefix, st := range f.failures {
		if strings.HasPrefix(r.URL.Path, prefix) {
			status = st
		}
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.serveIAM(w, r) {
		return
	}
	if r.Method != http.MethodGet {
		googleError(w, 405, "INVALID_ARGUMENT", "only GET is faked")
		return
	}
	kind, answer := f.route(r)
	f.mu.Lock()
	f.hits[kind]++
	f.mu.Unlock()
	switch {
	case status == http.StatusForbidden:
		googleError(w, 403, "PERMISSION_DENIED", "The caller does not have permission")
	case status != 0:
		googleError(w, status, "UNAVAILABLE", "injected failure")
	case answer == nil:
		googleError(w, 404, "NOT_FOUND", fmt.Sprintf("%s not found", r.URL.Path))
	default:
		writeJSON(w, answer)
	}
}

// route finds the answer to r: nil for a resource that does not exist.
func (f *Fake) route(r *http.Request) (kind string, answer any) {
	p := r.URL.Path
	f.mu.Lock()
	defer f.mu.Unlock()
	segs := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(segs) == 3 && segs[0] == "v3" && segs[1] == "projects":
		pr := f.projects[segs[2]]
		if pr == nil {
			return "project", nil
		}
		return "project", map[string]any{
			"name": "projects/" + pr.Number, "parent": pr.Parent, "projectId": pr.ID, "state": "ACTIVE",
			"displayName": pr.DisplayName, "createTime": "2024-01-01T00:00:00Z", "etag": "W/\"1\"", "labels": pr.Labels,
		}
	case len(segs) == 3 && segs[0] == "v3" && (segs[1] == "folders" || segs[1] == "organizations"):
		kind = strings.TrimSuffix(segs[1], "s")
		n, ok := f.nodes[segs[1]+"/"+segs[2]]
		if !ok {
			return kind, nil
		}
		out := map[string]any{"name": segs[1] + "/" + segs[2], "displayName": n.DisplayName, "state": "ACTIVE"}
		if segs[1] == "folders" {
			out["parent"] = n.Parent
		} else {
			out["directoryCustomerId"] = "C0abc"
		}
		return kind, out
	case len(segs) == 2 && segs[0] == "v3" && segs[1] == "effectiveTags":
		parent := r.URL.Query().Get("parent")
		num, ok := strings.CutPrefix(parent, "//cloudresourcemanager.googleapis.com/projects/")
		pr := f.projects[num]
		if !ok || pr == nil {
			return "tags", nil
		}
		var tags []map[string]any
		for k, v := range pr.Tags {
			tags = append(tags, map[string]any{
				"tagValue": "tagValues/1", "namespacedTagValue": k + "/" + v,
				"tagKey": "tagKeys/1", "namespacedTagKey": k, "tagKeyParentName": "organizations/1", "inherited": true,
			})
		}
		return "tags", map[string]any{"effectiveTags": tags}
	case len(segs) == 4 && segs[0] == "storage" && segs[2] == "b":
		b, ok := f.buckets[segs[3]]
		if !ok {
			return "bucket", nil
		}
		return "bucket", map[string]any{"kind": "storage#bucket", "name": segs[3], "projectNumber": b.ProjectNumber, "labels": b.Labels}
	case len(segs) == 8 && segs[0] == "compute" && (segs[6] == "instances" || segs[6] == "disks"):
		kind = strings.TrimSuffix(segs[6], "s")
		path := strings.Join(segs[2:], "/")
		labels, ok := f.labelled[path]
		if !ok {
			return kind, nil
		}
		return kind, map[string]any{"kind": "compute#" + kind, "id": "1234567890", "name": segs[7], "labels": labels}
	case len(segs) == 5 && segs[0] == "v1" && segs[3] == "secrets":
		path := strings.Join(segs[1:], "/")
		labels, ok := f.labelled[path]
		if !ok {
			return "secret", nil
		}
		return "secret", map[string]any{"name": path, "labels": labels, "replication": map[string]any{"automatic": map[string]any{}}}
	case len(segs) == 5 && segs[0] == "v1" && segs[3] == "instances":
		path := strings.Join(segs[1:], "/")
		labels, ok := f.labelled[path]
		if !ok {
			return "sql_instance", nil
		}
		return "sql_instance", map[string]any{"kind": "sql#instance", "name": segs[4], "project": segs[2], "settings": map[string]any{"userLabels": labels, "tier": "db-f1-micro"}}
	}
	return "unknown", nil
}
