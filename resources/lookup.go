package resources

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/gcp"
)

// Kinds of looked-up resources: the names of their TTLs in configuration.
const (
	KindProject      = "project"
	KindFolder       = "folder"
	KindOrganization = "organization"
	KindTags         = "tags"
	KindBucket       = "bucket"
	KindInstance     = "instance"
	KindDisk         = "disk"
	KindSecret       = "secret"
	KindSQLInstance  = "sql_instance"
)

// Kinds lists every kind, for configuration checks.
var Kinds = []string{KindProject, KindFolder, KindOrganization, KindTags, KindBucket, KindInstance, KindDisk, KindSecret, KindSQLInstance}

// Project is a Google Cloud project as Resource Manager holds it.
type Project struct {
	// Exists is false when Google says there is no such project (404).
	Exists bool `json:"exists"`
	// ID is the project id (acme-prod) and Number its number (415104041262).
	ID     string `json:"id"`
	Number string `json:"number"`
	// DisplayName is the project's display name.
	DisplayName string `json:"display_name,omitempty"`
	// Labels are the project's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Parent is the folder or organization directly above the project
	// ("folders/123"); Ancestry walks up from it, Tags reads the effective
	// tags. Both are looked up (and cached) on their own, only when asked.
	Parent string `json:"parent,omitempty"`
}

// Target is the resource a request acts on, where its own GET exposes
// labels.
type Target struct {
	// Kind is one of the Kind constants; empty when the request's target is
	// not a kind airlock looks up (then every attribute is empty).
	Kind string `json:"kind,omitempty"`
	// Name names the target: a bucket name, or the resource path.
	Name string `json:"name,omitempty"`
	// Exists is false when Google says there is no such resource (404).
	Exists bool `json:"exists"`
	// Labels are the target's own labels.
	Labels map[string]string `json:"labels,omitempty"`
	// ProjectNumber is the project a bucket belongs to.
	ProjectNumber string `json:"project_number,omitempty"`
}

// Ref names the target of an operation.
type Ref struct {
	Kind string
	// Project, Location and Name locate it: a bucket has only Name.
	Project, Location, Name string
}

// TargetOf names the target of op that airlock can look up: a bucket (and
// an object's bucket), a Compute Engine instance or disk, a Secret Manager
// secret (and its versions), a Cloud SQL instance. ok is false for every
// other operation.
func TargetOf(op gcp.Operation) (Ref, bool) {
	p := op.Params
	switch op.Service {
	case "storage":
		if b := p["bucket"]; b != "" {
			return Ref{Kind: KindBucket, Name: b}, true
		}
	case "compute":
		if op.Project == "" || p["zone"] == "" {
			break
		}
		if i := p["instance"]; i != "" {
			return Ref{Kind: KindInstance, Project: op.Project, Location: p["zone"], Name: i}, true
		}
		if d := p["disk"]; d != "" {
			return Ref{Kind: KindDisk, Project: op.Project, Location: p["zone"], Name: d}, true
		}
	case "secretmanager":
		// projects/P/secrets/S[/versions/V] and projects/P/locations/L/secrets/S[...]
		segs := strings.Split(op.Resource, "/")
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] == "secrets" && op.Project != "" {
				return Ref{Kind: KindSecret, Project: op.Project, Name: strings.Join(segs[:i+2], "/")}, true
			}
		}
	case "sqladmin":
		if i := p["instance"]; i != "" && op.Project != "" {
			return Ref{Kind: KindSQLInstance, Project: op.Project, Name: i}, true
		}
	}
	return Ref{}, false
}

// Options configure a Lookup.
type Options struct {
	// Client calls Google's APIs; it must add airlock's own read-only
	// credential (e.g. an oauth2.Transport). Required.
	Client *http.Client
	// Endpoints replace https://SERVICE.googleapis.com for a service
	// (cloudresourcemanager, storage, compute, secretmanager, sqladmin):
	// a base URL such as http://127.0.0.1:8089.
	Endpoints map[string]string
	// TTL is how long an answer is trusted (default 5m); KindTTL overrides
	// it per kind.
	TTL     time.Duration
	KindTTL map[string]time.Duration
	// NegativeTTL is how long "not found" is trusted (default 30s).
	NegativeTTL time.Duration
	// CacheSize bounds the answers kept in process (default 10000).
	CacheSize int
	// Timeout bounds one upstream call (default 2s).
	Timeout time.Duration
	// Redis, when set, shares answers across replicas.
	Redis redis.UniversalClient
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Lookup looks resources up and caches the answers. It is safe for
// concurrent use.
type Lookup struct {
	opts    Options
	cache   *tiers
	fetches atomic.Int64
}

// New returns a Lookup.
func New(opts Options) (*Lookup, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("resources: an authorised HTTP client is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 30 * time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for k := range opts.KindTTL {
		if !validKind(k) {
			return nil, fmt.Errorf("resources: unknown kind %q; want one of %s", k, strings.Join(Kinds, ", "))
		}
	}
	l := &Lookup{opts: opts}
	l.cache = &tiers{
		local: newLocalCache(opts.CacheSize),
		redis: opts.Redis,
		now:   opts.Now,
		ttl: func(kind string) time.Duration {
			if d, ok := opts.KindTTL[kind]; ok && d > 0 {
				return d
			}
			return opts.TTL
		},
		negative: opts.NegativeTTL,
		onFetch:  func(string) { l.fetches.Add(1) },
	}
	return l, nil
}

func validKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Fetches counts the upstream lookups made so far (cache misses).
func (l *Lookup) Fetches() int64 { return l.fetches.Load() }

// Project looks up a project by id or number, with its ancestry and
// effective tags.
func (l *Lookup) Project(ctx context.Context, idOrNumber string) (Project, error) {
	if !validProjectRef(idOrNumber) {
		return Project{}, fmt.Errorf("resources: %q is not a project id or number", clip(idOrNumber))
	}
	v, found, err := l.cache.get(ctx, KindProject, idOrNumber, func(ctx context.Context) (any, bool, error) {
		return l.fetchProject(ctx, idOrNumber)
	}, decodeAs[Project]())
	if err != nil {
		return Project{}, err
	}
	if !found {
		return Project{}, nil
	}
	p := v.(Project)
	// The same project by its other name: a later lookup by number after
	// one by id (or the other way) is a cache hit.
	if other := p.ID; other == idOrNumber {
		l.cache.alias(ctx, KindProject, p.Number, p)
	} else {
		l.cache.alias(ctx, KindProject, other, p)
	}
	return p, nil
}

// Target looks up the target ref names.
func (l *Lookup) Target(ctx context.Context, ref Ref) (Target, error) {
	id := ref.Name
	if ref.Project != "" {
		id = ref.Project + "/" + ref.Location + "/" + ref.Name
	}
	v, found, err := l.cache.get(ctx, ref.Kind, id, func(ctx context.Context) (any, bool, error) {
		return l.fetchTarget(ctx, ref)
	}, decodeAs[Target]())
	if err != nil {
		return Target{}, err
	}
	if !found {
		return Target{Kind: ref.Kind, Name: ref.Name}, nil
	}
	return v.(Target), nil
}

// validProjectRef reports whether s can be a project id (6 to 30 of a-z,
// 0-9 and '-', starting with a letter; "domain:" prefixes allowed) or
// number; anything else never reaches Google.
func validProjectRef(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// IsProjectNumber reports whether s is a project number rather than an id.
func IsProjectNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
