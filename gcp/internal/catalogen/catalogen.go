// Package catalogen compiles Google's Discovery documents into the compact
// operation catalog that package gcp embeds.
//
// The catalog is gzipped JSON lines: one API per line (see [API]), APIs with
// a plain version (v1, v2.1) first, each group in the order of the
// documents' paths inside the module, so that the output is stable.
package catalogen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// API is one Discovery document in the catalog.
type API struct {
	// Name and Version are the document's name and version, e.g. "compute", "v1".
	Name    string `json:"api"`
	Version string `json:"version"`
	// ServicePath is the path prefix of every method below the host,
	// without leading slash, e.g. "compute/v1/" (rootUrl path included).
	ServicePath string `json:"sp,omitempty"`
	// BatchPath is the batch endpoint, e.g. "batch/compute/v1".
	BatchPath string `json:"batch,omitempty"`
	// Hosts are every host that serves the API: rootUrl, mtlsRootUrl and
	// the regional endpoints, plus www.googleapis.com for APIs with a
	// service path.
	Hosts []string `json:"hosts"`
	// Methods are the API's methods, sorted by id.
	Methods []Method `json:"methods"`
}

// Method is one Discovery method.
type Method struct {
	// ID is the Discovery method id, e.g. "compute.instances.delete".
	ID string `json:"id"`
	// HTTPMethod is the upper-case HTTP method.
	HTTPMethod string `json:"m"`
	// Templates are path templates below the host, without leading slash:
	// the method path (flatPath when present) first, then media upload and
	// download paths. Variables are {name} (one segment) or {+name} (one or
	// more segments); a segment may end in a literal ":verb".
	Templates []string `json:"t"`
	// ReadOnly follows [ReadOnly].
	ReadOnly bool `json:"ro,omitempty"`
	// LongRunning is true when the method returns an Operation.
	LongRunning bool `json:"lro,omitempty"`
	// Spans name path parameters of the Discovery path that span several
	// segments of the first template, e.g. {+name}: [name, first, end).
	Spans []Span `json:"spans,omitempty"`
	// ProjectQuery is the name of a query parameter that names the
	// project (storage buckets.list: "project"), when there is one.
	ProjectQuery string `json:"pq,omitempty"`
}

// Span maps a multi-segment Discovery path parameter onto segments
// [Start, End) of the first template; the last segment's ":verb" suffix is
// not part of the value.
type Span struct {
	Name  string `json:"n"`
	Start int    `json:"s"`
	End   int    `json:"e"`
}

// Stats summarises a generation run.
type Stats struct {
	Documents int // GA documents compiled
	Skipped   int // documents skipped (alpha/beta versions, no methods)
	Methods   int
}

type discoDoc struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	RootURL     string `json:"rootUrl"`
	MTLSRootURL string `json:"mtlsRootUrl"`
	ServicePath string `json:"servicePath"`
	BaseURL     string `json:"baseUrl"`
	BatchPath   string `json:"batchPath"`
	Endpoints   []struct {
		EndpointURL string `json:"endpointUrl"`
	} `json:"endpoints"`
	Methods   map[string]*discoMethod   `json:"methods"`
	Resources map[string]*discoResource `json:"resources"`
	Schemas   map[string]struct {
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"schemas"`
}

type discoResource struct {
	Methods   map[string]*discoMethod   `json:"methods"`
	Resources map[string]*discoResource `json:"resources"`
}

type discoMethod struct {
	ID         string `json:"id"`
	HTTPMethod string `json:"httpMethod"`
	Path       string `json:"path"`
	FlatPath   string `json:"flatPath"`
	Parameters map[string]struct {
		Location string `json:"location"`
	} `json:"parameters"`
	Response *struct {
		Ref string `json:"$ref"`
	} `json:"response"`
	MediaUpload *struct {
		Protocols struct {
			Simple *struct {
				Path string `json:"path"`
			} `json:"simple"`
			Resumable *struct {
				Path string `json:"path"`
			} `json:"resumable"`
		} `json:"protocols"`
	} `json:"mediaUpload"`
	SupportsMediaDownload bool `json:"supportsMediaDownload"`
}

// ModuleDocuments lists the Discovery documents (*-api.json) below dir, the
// root of the google.golang.org/api module, sorted, skipping the
// generator's own test data.
func ModuleDocuments(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || d.Name() == "google-api-go-generator" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), "-api.json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalogen: walk %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, nil
}

// IsGA reports whether a Discovery version is generally available: any
// version naming alpha or beta (v1beta, v1p1beta1, v2alpha) is not.
func IsGA(version string) bool {
	v := strings.ToLower(version)
	return !strings.Contains(v, "alpha") && !strings.Contains(v, "beta")
}

// servedBeta are documents whose version names beta but that Google serves
// as generally available and that the standard clients call by default:
// Cloud SQL Admin v1beta4 is the version of gcloud sql and of Terraform's
// google provider (sql_custom_endpoint .../sql/v1beta4/).
var servedBeta = map[string]bool{"sqladmin v1beta4": true}

// Included reports whether the document name, version is compiled: a GA
// version, or one of servedBeta.
func Included(name, version string) bool {
	return name != "" && (IsGA(version) || servedBeta[name+" "+version])
}

// Generate compiles the GA documents among files into APIs.
func Generate(files []string) ([]API, Stats, error) {
	var apis []API
	var st Stats
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, st, fmt.Errorf("catalogen: read %s: %w", f, err)
		}
		var d discoDoc
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, st, fmt.Errorf("catalogen: parse %s: %w", f, err)
		}
		if !Included(d.Name, d.Version) {
			st.Skipped++
			continue
		}
		api, err := compile(&d)
		if err != nil {
			return nil, st, fmt.Errorf("catalogen: %s: %w", f, err)
		}
		if len(api.Methods) == 0 {
			st.Skipped++
			continue
		}
		st.Documents++
		st.Methods += len(api.Methods)
		apis = append(apis, api)
	}
	// Where two documents serve the same path (compute "preview" shares
	// compute/v1/ with v1), the one with a plain version (v1, v2.1,
	// directory_v1) is listed first and wins.
	sort.SliceStable(apis, func(i, j int) bool { return versionRank(apis[i].Version) < versionRank(apis[j].Version) })
	return apis, st, nil
}

func versionRank(v string) int {
	if i := strings.LastIndexByte(v, '_'); i >= 0 {
		v = v[i+1:]
	}
	if len(v) < 2 || v[0] != 'v' {
		return 1
	}
	for i := 1; i < len(v); i++ {
		if !(v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
			return 1
		}
	}
	return 0
}

func hostOf(raw string) (string, string, error) {
	if raw == "" {
		return "", "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("root url %q: %w", raw, err)
	}
	return strings.ToLower(u.Hostname()), strings.Trim(u.Path, "/"), nil
}

func compile(d *discoDoc) (API, error) {
	root := d.RootURL
	servicePath := d.ServicePath
	if root == "" && d.BaseURL != "" {
		// Old documents name only baseUrl: it is root + service path.
		u, err := url.Parse(d.BaseURL)
		if err != nil {
			return API{}, fmt.Errorf("base url %q: %w", d.BaseURL, err)
		}
		root = u.Scheme + "://" + u.Host + "/"
		servicePath = strings.TrimPrefix(u.Path, "/")
	}
	host, rootPath, err := hostOf(root)
	if err != nil {
		return API{}, err
	}
	if host == "" {
		return API{}, fmt.Errorf("no root url")
	}
	prefix := servicePath
	if rootPath != "" {
		prefix = rootPath + "/" + servicePath
	}
	prefix = strings.TrimPrefix(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	api := API{Name: d.Name, Version: d.Version, ServicePath: prefix, BatchPath: strings.Trim(d.BatchPath, "/")}
	hosts := map[string]bool{host: true}
	if h, _, err := hostOf(d.MTLSRootURL); err == nil && h != "" {
		hosts[h] = true
	}
	for _, e := range d.Endpoints {
		if h, _, err := hostOf(e.EndpointURL); err == nil && h != "" {
			hosts[h] = true
		}
	}
	if prefix != "" && strings.HasSuffix(host, ".googleapis.com") {
		// The legacy front end serves every API with a service path.
		hosts["www.googleapis.com"] = true
	}
	for h := range hosts {
		api.Hosts = append(api.Hosts, h)
	}
	sort.Strings(api.Hosts)

	var methods []*discoMethod
	var walk func(ms map[string]*discoMethod, rs map[string]*discoResource)
	walk = func(ms map[string]*discoMethod, rs map[string]*discoResource) {
		for _, m := range ms {
			methods = append(methods, m)
		}
		for _, r := range rs {
			walk(r.Methods, r.Resources)
		}
	}
	walk(d.Methods, d.Resources)
	sort.Slice(methods, func(i, j int) bool { return methods[i].ID < methods[j].ID })
	seen := map[string]bool{}
	for _, m := range methods {
		if m.ID == "" || m.HTTPMethod == "" || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		api.Methods = append(api.Methods, compileMethod(d, prefix, m))
	}
	return api, nil
}

func compileMethod(d *discoDoc, prefix string, m *discoMethod) Method {
	hm := strings.ToUpper(m.HTTPMethod)
	out := Method{ID: m.ID, HTTPMethod: hm}
	p := m.FlatPath
	if p == "" {
		p = m.Path
	}
	main := join(prefix, p)
	out.Templates = append(out.Templates, main)
	if m.FlatPath != "" && m.FlatPath != m.Path {
		out.Spans = spans(join(prefix, m.Path), main)
	}
	if mu := m.MediaUpload; mu != nil {
		for _, pr := range []*struct {
			Path string `json:"path"`
		}{mu.Protocols.Simple, mu.Protocols.Resumable} {
			if pr != nil && pr.Path != "" {
				out.Templates = appendUnique(out.Templates, join(prefix, pr.Path))
			}
		}
	}
	if m.SupportsMediaDownload && prefix != "" {
		out.Templates = appendUnique(out.Templates, "download/"+join(prefix, p))
	}
	out.ReadOnly = ReadOnly(hm, m.ID)
	if m.Response != nil {
		out.LongRunning = longRunning(d, m.Response.Ref)
	}
	for _, q := range []string{"project", "projectId"} {
		if prm, ok := m.Parameters[q]; ok && prm.Location == "query" {
			out.ProjectQuery = q
			break
		}
	}
	return out
}

// join resolves a method path against the service path: an absolute path
// (media upload) is taken from the host root.
func join(prefix, p string) string {
	if strings.HasPrefix(p, "/") {
		return strings.TrimPrefix(p, "/")
	}
	return prefix + p
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// spans aligns the reserved-expansion variables of path ({+name}) with the
// segments of flat: segments before the variable map one to one from the
// start, segments after it from the end.
func spans(path, flat string) []Span {
	ps := strings.Split(path, "/")
	fs := strings.Split(flat, "/")
	plus := -1
	for i, s := range ps {
		if strings.HasPrefix(s, "{+") {
			if plus >= 0 {
				return nil // two multi-segment variables: ambiguous
			}
			plus = i
		}
	}
	if plus < 0 {
		return nil
	}
	after := len(ps) - plus - 1
	end := len(fs) - after
	if end <= plus {
		return nil
	}
	seg := ps[plus]
	name := strings.TrimPrefix(seg[:strings.IndexByte(seg, '}')], "{+")
	return []Span{{Name: name, Start: plus, End: end}}
}

// longRunning reports whether a response schema is a long-running
// operation: compute-style "Operation", or any *Operation schema with the
// google.longrunning "done" field.
func longRunning(d *discoDoc, ref string) bool {
	if ref == "Operation" {
		return true
	}
	if !strings.HasSuffix(ref, "Operation") {
		return false
	}
	s, ok := d.Schemas[ref]
	if !ok {
		return false
	}
	_, done := s.Properties["done"]
	return done
}

// Encode writes apis as gzipped JSON lines. The gzip header carries no name
// or time, so the bytes depend only on the content and the compressor.
func Encode(apis []API) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("catalogen: gzip: %w", err)
	}
	if err := EncodeLines(zw, apis); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("catalogen: gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// EncodeLines writes apis as JSON lines, uncompressed.
func EncodeLines(w interface{ Write([]byte) (int, error) }, apis []API) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range apis {
		if err := enc.Encode(&apis[i]); err != nil {
			return fmt.Errorf("catalogen: encode %s %s: %w", apis[i].Name, apis[i].Version, err)
		}
	}
	return nil
}
