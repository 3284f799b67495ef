package gcp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed" // the generated catalog
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
)

//go:generate go run ./internal/gen -o catalog.jsonl.gz -schemas schemas.jsonl.gz

// catalogData is the generated catalog: gzipped JSON lines, one API per
// line, compiled from the Discovery documents of google.golang.org/api.
//
//go:embed catalog.jsonl.gz
var catalogData []byte

// Catalog maps host + HTTP method + normalised path to the Discovery method
// it invokes. It is immutable once built and safe for concurrent use.
type Catalog struct {
	apis  []apiInfo
	hosts map[string]*index // exact host -> index of every API it serves
	ids   map[string]*entry // method id -> its first entry
	total int
}

type apiInfo struct {
	name, version string
	servicePath   []string // segments
	batchPath     string
}

// index is the set of templates served by one group of hosts: a segment trie.
type index struct {
	root    *node
	service string // API name of the first API in the group
	apis    []int
	verbs   map[string]bool // custom verbs (":cancel") of the templates
}

type node struct {
	lit   map[string]*node
	vars  []varEdge // one-segment variables, longest verb suffix first
	rest  *restEdge // multi-segment {+name} variable
	leafs map[string]*entry
}

type varEdge struct {
	suffix string // ":verb" or ""
	child  *node
}

type restEdge struct {
	suffix string
	child  *node
}

// entry is one method reached through one template.
type entry struct {
	api         int
	id          string
	readOnly    bool
	longRunning bool
	projectQ    string
	vars        []tplVar // variables by template segment
	spans       []catalogen.Span
	resStart    int // first segment of the resource path
	resEnd      int // one past the last segment holding a variable
	nsegs       int // template segments; -1 when it has a {+name} variable
	projectVar  int // index in vars of the project parameter, or -1
	locationVar int // index in vars of the location parameter, or -1
}

type tplVar struct {
	seg    int
	name   string
	suffix string
	multi  bool
}

var (
	defaultOnce    sync.Once
	defaultCatalog *Catalog
	defaultErr     error
)

// DefaultCatalog returns the embedded, generated catalog. It is parsed once,
// on first use; a corrupt embedded catalog is a build defect and panics.
func DefaultCatalog() *Catalog {
	defaultOnce.Do(func() {
		defaultCatalog, defaultErr = ParseCatalog(catalogData)
	})
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultCatalog
}

// ParseCatalog builds a catalog from generated data (gzipped JSON lines).
func ParseCatalog(data []byte) (*Catalog, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gcp: catalog: %w", err)
	}
	apis, err := decodeAPIs(zr)
	if err != nil {
		return nil, err
	}
	return newCatalog(apis)
}

func decodeAPIs(r io.Reader) ([]catalogen.API, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var apis []catalogen.API
	for {
		var a catalogen.API
		err := dec.Decode(&a)
		if err == io.EOF {
			return apis, nil
		}
		if err != nil {
			return nil, fmt.Errorf("gcp: catalog line %d: %w", len(apis)+1, err)
		}
		apis = append(apis, a)
	}
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func newCatalog(apis []catalogen.API) (*Catalog, error) {
	c := &Catalog{hosts: map[string]*index{}, ids: map[string]*entry{}}
	// Hosts serving the same set of APIs share one index.
	hostAPIs := map[string][]int{}
	for i, a := range apis {
		c.apis = append(c.apis, apiInfo{name: a.Name, version: a.Version, servicePath: splitPath(a.ServicePath), batchPath: a.BatchPath})
		for _, h := range a.Hosts {
			hostAPIs[h] = append(hostAPIs[h], i)
		}
	}
	groups := map[string]*index{}
	hostNames := make([]string, 0, len(hostAPIs))
	for h := range hostAPIs {
		hostNames = append(hostNames, h)
	}
	sort.Strings(hostNames)
	for _, h := range hostNames {
		ids := hostAPIs[h]
		key := fmt.Sprint(ids)
		ix, ok := groups[key]
		if !ok {
			ix = &index{root: &node{}, service: apis[ids[0]].Name, apis: ids, verbs: map[string]bool{}}
			for _, ai := range ids {
				if apis[ai].Name != ix.service {
					ix.service = "" // a shared host such as www.googleapis.com
				}
			}
			for _, ai := range ids {
				for _, m := range apis[ai].Methods {
					for ti, t := range m.Templates {
						if err := c.insert(ix, ai, m, ti, t); err != nil {
							return nil, fmt.Errorf("gcp: catalog %s: %w", m.ID, err)
						}
					}
				}
			}
			groups[key] = ix
		}
		c.hosts[h] = ix
	}
	for _, a := range apis {
		c.total += len(a.Methods)
	}
	return c, nil
}

func (c *Catalog) insert(ix *index, ai int, m catalogen.Method, ti int, tpl string) error {
	segs := splitPath(tpl)
	e := &entry{api: ai, id: m.ID, readOnly: m.ReadOnly, longRunning: m.LongRunning, projectQ: m.ProjectQuery, nsegs: len(segs)}
	if ti == 0 {
		e.spans = m.Spans
	}
	n := ix.root
	for i, s := range segs {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			next := n.lit[s]
			if next == nil {
				next = &node{}
				n.lit[s] = next
			}
			n = next
			continue
		}
		closing := strings.IndexByte(s, '}')
		if open != 0 || closing < 0 {
			return fmt.Errorf("template %q: variable must fill a segment", tpl)
		}
		name, suffix := s[1:closing], s[closing+1:]
		if suffix != "" && suffix[0] != ':' {
			return fmt.Errorf("template %q: unsupported segment %q", tpl, s)
		}
		if suffix != "" {
			ix.verbs[suffix] = true
		}
		multi := strings.HasPrefix(name, "+")
		name = strings.TrimPrefix(name, "+")
		e.vars = append(e.vars, tplVar{seg: i, name: name, suffix: suffix, multi: multi})
		if multi {
			e.nsegs = -1
			if n.rest == nil {
				n.rest = &restEdge{suffix: suffix, child: &node{}}
			} else if n.rest.suffix != suffix {
				// Rare: keep the first; the other stays reachable through
				// its flat template when it has one.
				return nil
			}
			n = n.rest.child
			continue
		}
		var next *node
		for _, v := range n.vars {
			if v.suffix == suffix {
				next = v.child
			}
		}
		if next == nil {
			next = &node{}
			n.vars = append(n.vars, varEdge{suffix: suffix, child: next})
			sort.SliceStable(n.vars, func(a, b int) bool { return len(n.vars[a].suffix) > len(n.vars[b].suffix) })
		}
		n = next
	}
	if n.leafs == nil {
		n.leafs = map[string]*entry{}
	}
	if _, dup := n.leafs[m.HTTPMethod]; dup {
		return nil // first API in catalog order wins
	}
	e.resStart, e.resEnd = resourceRange(segs, c.apis[ai].servicePath)
	e.projectVar, e.locationVar = roleVar(e.vars, projectParams), roleVar(e.vars, locationParams)
	n.leafs[m.HTTPMethod] = e
	if _, ok := c.ids[m.ID]; !ok {
		c.ids[m.ID] = e
	}
	return nil
}

// resourceRange finds the resource path inside a template: after the
// upload/download prefixes, the service path and a version segment, up to
// the last segment holding a variable.
func resourceRange(segs, servicePath []string) (int, int) {
	i := 0
	for i < len(segs) && (segs[i] == "upload" || segs[i] == "resumable" || segs[i] == "download") {
		i++
	}
	if len(servicePath) > 0 && len(segs)-i >= len(servicePath) {
		match := true
		for k, s := range servicePath {
			if segs[i+k] != s {
				match = false
				break
			}
		}
		if match {
			i += len(servicePath)
		}
	}
	if i < len(segs) && isVersion(segs[i]) {
		i++
	}
	end := i
	for k := i; k < len(segs); k++ {
		if strings.IndexByte(segs[k], '{') >= 0 {
			end = k + 1
		}
	}
	return i, end
}

// isVersion reports whether a segment names an API version: v1, v2.1,
// v1beta1, v3p1, directory_v1 does not count.
func isVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] < '0' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch == '.') {
			return false
		}
	}
	return true
}

// APIs returns the number of APIs (Discovery documents) and methods.
func (c *Catalog) APIs() (apis, methods int) { return len(c.apis), c.total }

// Methods returns the ids of every method of the named API version, sorted.
func (c *Catalog) Methods(api, version string) []string {
	var ids []string
	seen := map[string]bool{}
	for _, ix := range c.hosts {
		collect(ix.root, func(e *entry) {
			a := c.apis[e.api]
			if a.name == api && a.version == version && !seen[e.id] {
				seen[e.id] = true
				ids = append(ids, e.id)
			}
		})
	}
	sort.Strings(ids)
	return ids
}

func collect(n *node, f func(*entry)) {
	for _, e := range n.leafs {
		f(e)
	}
	for _, c := range n.lit {
		collect(c, f)
	}
	for _, v := range n.vars {
		collect(v.child, f)
	}
	if n.rest != nil {
		collect(n.rest.child, f)
	}
}

// Service returns the API name served at host (already normalised); known
// is false for a host the catalog does not know. The name is "" for a host
// that serves several APIs (www.googleapis.com).
func (c *Catalog) Service(host string) (name string, known bool) {
	if ix := c.index(host); ix != nil {
		return ix.service, true
	}
	return "", false
}

// apisAt names the APIs served at a normalised host, "compute v1", in
// catalog order (plain versions first); nil for a host the catalog does not
// know.
func (c *Catalog) apisAt(host string) []string {
	ix := c.index(host)
	if ix == nil {
		return nil
	}
	out := make([]string, 0, len(ix.apis))
	for _, ai := range ix.apis {
		out = append(out, c.apis[ai].name+" "+c.apis[ai].version)
	}
	return out
}

// index finds the index of a normalised host: the hosts Discovery lists,
// then the aliases of hosts.go.
func (c *Catalog) index(host string) *index {
	if ix := c.hosts[host]; ix != nil {
		return ix
	}
	if canon := aliasOf(host); canon != "" {
		return c.hosts[canon]
	}
	return nil
}

// Lookup finds the operation for an already-normalised request: host in
// lower case without port, upper-case method, path as NormalizePath returns
// it (query removed). HEAD falls back to GET. The second result is false
// when the host or the path is unknown.
func (c *Catalog) Lookup(host, method, path string) (Operation, bool) {
	op, e := c.lookup(host, method, path)
	return op, e != nil
}

func (c *Catalog) lookup(host, method, path string) (Operation, *entry) {
	ix := c.index(host)
	if ix == nil {
		return Operation{}, nil
	}
	return c.lookupIndex(ix, host, method, path)
}

func (c *Catalog) lookupIndex(ix *index, host, method, path string) (Operation, *entry) {
	var buf [48]string
	segs := buf[:0]
	p := strings.TrimPrefix(path, "/")
	for p != "" {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			segs = append(segs, p)
			break
		}
		segs = append(segs, p[:i])
		p = p[i+1:]
	}
	m := matcher{segs: segs, method: method}
	e := m.run(ix)
	if e == nil && method == "HEAD" {
		m.method = "GET"
		e = m.run(ix)
	}
	if e == nil {
		return Operation{}, nil
	}
	return c.operation(e, segs, m.ends[:], host), e
}

// byID builds the operation of a method id with no path parameters; ok is
// false when the catalog lacks the id.
func (c *Catalog) byID(id string) (Operation, bool) {
	e := c.ids[id]
	if e == nil {
		return Operation{}, false
	}
	a := c.apis[e.api]
	return Operation{Service: a.name, Version: a.version, Method: e.id, ReadOnly: e.readOnly, LongRunning: e.longRunning}, true
}

// match walks the trie: literals before verb variables before plain
// variables before multi-segment variables, backtracking on failure, so the
// most literal template that serves method wins. As in Google's front end,
// a last segment ending in a custom verb of the API (":access") is matched
// only by a template with that verb. ends records for each template segment
// the request segment it ended on (multi-segment variables cover several).
func (m *matcher) run(ix *index) *entry {
	segs := m.segs
	if len(segs) > len(m.ends) {
		return nil
	}
	m.hasVerb = false
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		if i := strings.LastIndexByte(last, ':'); i > 0 {
			m.hasVerb = ix.verbs[last[i:]]
		}
	}
	return m.walk(ix.root, 0, 0)
}

type matcher struct {
	segs    []string
	method  string
	hasVerb bool
	ends    [48]int
}

func (m *matcher) walk(n *node, i, t int) *entry {
	segs := m.segs
	if i == len(segs) {
		return n.leafs[m.method]
	}
	if t >= len(m.ends) {
		return nil
	}
	s := segs[i]
	if next := n.lit[s]; next != nil {
		m.ends[t] = i + 1
		if e := m.walk(next, i+1, t+1); e != nil {
			return e
		}
	}
	for _, v := range n.vars {
		if v.suffix != "" {
			if i != len(segs)-1 || len(s) <= len(v.suffix) || !strings.HasSuffix(s, v.suffix) {
				continue
			}
		} else if m.hasVerb && i == len(segs)-1 {
			continue
		}
		m.ends[t] = i + 1
		if e := m.walk(v.child, i+1, t+1); e != nil {
			return e
		}
	}
	if r := n.rest; r != nil {
		for j := len(segs); j > i; j-- { // longest first
			if r.suffix != "" && (j != len(segs) || len(segs[j-1]) <= len(r.suffix) || !strings.HasSuffix(segs[j-1], r.suffix)) {
				continue
			}
			if r.suffix == "" && m.hasVerb && j == len(segs) {
				continue
			}
			m.ends[t] = j
			if e := m.walk(r.child, j, t+1); e != nil {
				return e
			}
		}
	}
	return nil
}

func (c *Catalog) operation(e *entry, segs []string, ends []int, host string) Operation {
	a := c.apis[e.api]
	op := Operation{Service: a.name, Version: a.version, Method: e.id, ReadOnly: e.readOnly, LongRunning: e.longRunning}
	start := func(t int) int {
		if t == 0 {
			return 0
		}
		return ends[t-1]
	}
	if len(e.vars) > 0 || len(e.spans) > 0 {
		op.Params = make(map[string]string, len(e.vars)+len(e.spans))
	}
	for _, v := range e.vars {
		raw := strings.Join(segs[start(v.seg):ends[v.seg]], "/")
		op.Params[v.name] = decodeParam(strings.TrimSuffix(raw, v.suffix))
	}
	for _, sp := range e.spans {
		if sp.End <= sp.Start || sp.End > len(segs) {
			continue
		}
		raw := strings.Join(segs[start(sp.Start):ends[sp.End-1]], "/")
		op.Params[sp.Name] = decodeParam(strings.TrimSuffix(raw, e.suffixAt(sp.End-1)))
	}
	if e.resEnd > e.resStart && e.resEnd <= len(ends) {
		from, to := start(e.resStart), ends[e.resEnd-1]
		var b strings.Builder
		n := to - from
		for k := from; k < to; k++ {
			n += len(segs[k])
		}
		b.Grow(n)
		for k := from; k < to; k++ {
			s := segs[k]
			if k == to-1 {
				s = strings.TrimSuffix(s, e.suffixAt(e.resEnd-1))
			}
			if k > from {
				b.WriteByte('/')
			}
			b.WriteString(decodeParam(s))
		}
		op.Resource = b.String()
		if a.name == "storage" {
			op.Resource = storageResource(op.Resource)
		}
	}
	if e.projectVar >= 0 {
		op.Project = op.Params[e.vars[e.projectVar].name]
	}
	if e.locationVar >= 0 {
		op.Location = op.Params[e.vars[e.locationVar].name]
	}
	op.Project, op.Location = completeProjectLocation(op.Project, op.Location, op.Params, op.Resource)
	if op.Location == "" {
		if _, region, ok := regionalHost(host); ok {
			op.Location = region
		}
	}
	return op
}

// suffixAt returns the ":verb" suffix of the variable at template segment t.
func (e *entry) suffixAt(t int) string {
	for _, v := range e.vars {
		if v.seg == t {
			return v.suffix
		}
	}
	return ""
}

// storageResource rewrites a Cloud Storage JSON API path to the resource
// name IAM uses: b/B/o/O becomes projects/_/buckets/B/objects/O.
func storageResource(r string) string {
	rest, ok := strings.CutPrefix(r, "b/")
	if !ok {
		return r
	}
	bucket, tail, _ := strings.Cut(rest, "/")
	out := "projects/_/buckets/" + bucket
	if obj, ok := strings.CutPrefix(tail, "o/"); ok {
		return out + "/objects/" + obj
	}
	if tail != "" {
		return out + "/" + tail
	}
	return out
}

var projectParams = []string{"project", "projectId", "projectsId", "projectName"}
var locationParams = []string{"location", "locationsId", "locationId", "zone", "zonesId", "region", "regionsId"}

// roleVar returns the index in vars of the first of names (in the order of
// names) that is a variable, or -1.
func roleVar(vars []tplVar, names []string) int {
	for _, n := range names {
		for i, v := range vars {
			if v.name == n {
				return i
			}
		}
	}
	return -1
}

// completeProjectLocation fills a project or location that no path
// parameter named: from a service account address (projects/-/serviceAccounts/
// SA@P.iam.gserviceaccount.com), then from the resource path (projects/P/...,
// locations|zones|regions/L).
func completeProjectLocation(project, location string, params map[string]string, resource string) (string, string) {
	if project == "" || project == "-" {
		for _, k := range []string{"serviceAccountsId", "serviceAccount"} {
			if p := serviceAccountProject(params[k]); p != "" {
				project = p
				break
			}
		}
	}
	if (project != "" && project != "-") && location != "" {
		return project, location
	}
	prev := ""
	rest := resource
	for rest != "" {
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		switch prev {
		case "projects":
			if (project == "" || project == "-") && seg != "_" && seg != "-" {
				project = seg
			}
		case "locations", "zones", "regions":
			if location == "" && seg != "-" {
				location = seg
			}
		}
		prev = seg
	}
	return project, location
}

// serviceAccountProject returns P of NAME@P.iam.gserviceaccount.com.
func serviceAccountProject(sa string) string {
	_, domain, ok := strings.Cut(sa, "@")
	if !ok {
		return ""
	}
	p, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com")
	if !ok || p == "" || strings.IndexByte(p, '.') >= 0 {
		return ""
	}
	return p
}
