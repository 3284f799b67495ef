package resources_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/redistest"
	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is an organization with a production folder holding a folder
// holding acme-prod, and acme-dev directly under the organization.
func world(t *testing.T) *resourcestest.Fake {
	f := resourcestest.New(t)
	f.AddNode("organizations/100", resourcestest.Node{DisplayName: "acme.com"})
	f.AddNode("folders/200", resourcestest.Node{DisplayName: "prod", Parent: "organizations/100"})
	f.AddNode("folders/300", resourcestest.Node{DisplayName: "payments", Parent: "folders/200"})
	f.AddProject(resourcestest.Project{ID: "acme-prod", Number: "415104041262", DisplayName: "Acme production", Parent: "folders/300",
		Labels: map[string]string{"env": "prod"}, Tags: map[string]string{"100/env": "production"}})
	f.AddProject(resourcestest.Project{ID: "acme-dev", Number: "111111111111", Parent: "organizations/100", Labels: map[string]string{"env": "dev"}})
	f.AddBucket("acme-prod-data", resourcestest.Bucket{ProjectNumber: "415104041262", Labels: map[string]string{"data": "pii"}})
	f.SetLabels("projects/acme-prod/zones/us-east1-b/instances/web-1", map[string]string{"role": "web"})
	f.SetLabels("projects/acme-prod/zones/us-east1-b/disks/web-1", map[string]string{"role": "boot"})
	f.SetLabels("projects/acme-prod/secrets/db-password", map[string]string{"owner": "dba"})
	f.SetLabels("projects/acme-prod/instances/orders", map[string]string{"tier": "gold"})
	return f
}

func newLookup(t *testing.T, f *resourcestest.Fake, opts resources.Options) *resources.Lookup {
	t.Helper()
	opts.Client = &http.Client{Transport: bearer{"lookup-token", http.DefaultTransport}}
	opts.Endpoints = f.Endpoints()
	l, err := resources.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// bearer adds airlock's lookup credential, as oauth2.Transport would.
type bearer struct {
	tok  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.base.RoundTrip(r)
}

func TestProjectByIDAndNumber(t *testing.T) {
	f := world(t)
	l := newLookup(t, f, resources.Options{})
	ctx := context.Background()
	byNumber, err := l.Project(ctx, "415104041262")
	if err != nil {
		t.Fatal(err)
	}
	if !byNumber.Exists || byNumber.ID != "acme-prod" || byNumber.Number != "415104041262" || byNumber.Labels["env"] != "prod" || byNumber.Parent != "folders/300" {
		t.Fatalf("by number = %+v", byNumber)
	}
	byID, err := l.Project(ctx, "acme-prod")
	if err != nil || byID.Number != "415104041262" {
		t.Fatalf("by id = %+v, %v", byID, err)
	}
	if n := f.Hits("project"); n != 1 {
		t.Errorf("projects.get called %d times; the id lookup should reuse the number's answer", n)
	}
	if got := f.Authorizations(); len(got) == 0 || got[0] != "Bearer lookup-token" {
		t.Errorf("lookups sent %v, want airlock's own credential", got)
	}
}

func TestAncestryTwoFoldersUp(t *testing.T) {
	f := world(t)
	l := newLookup(t, f, resources.Options{})
	ids, names, err := l.Ancestry(context.Background(), "folders/300")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "folders/300,folders/200,organizations/100" || strings.Join(names, ",") != "payments,prod,acme.com" {
		t.Fatalf("ancestry = %v %v", ids, names)
	}
	tags, err := l.Tags(context.Background(), "415104041262")
	if err != nil || tags["env"] != "production" || tags["100/env"] != "production" {
		t.Fatalf("tags = %v, %v", tags, err)
	}
}

func TestTargets(t *testing.T) {
	f := world(t)
	l := newLookup(t, f, resources.Options{})
	ctx := context.Background()
	cases := []struct {
		op     gcp.Operation
		kind   string
		labels string
	}{
		{gcp.Operation{Service: "storage", Params: map[string]string{"bucket": "acme-prod-data", "object": "a/b"}}, resources.KindBucket, "pii"},
		{gcp.Operation{Service: "compute", Project: "acme-prod", Params: map[string]string{"project": "acme-prod", "zone": "us-east1-b", "instance": "web-1"}}, resources.KindInstance, "web"},
		{gcp.Operation{Service: "compute", Project: "acme-prod", Params: map[string]string{"project": "acme-prod", "zone": "us-east1-b", "disk": "web-1"}}, resources.KindDisk, "boot"},
		{gcp.Operation{Service: "secretmanager", Project: "acme-prod", Resource: "projects/acme-prod/secrets/db-password/versions/latest"}, resources.KindSecret, "dba"},
		{gcp.Operation{Service: "sqladmin", Project: "acme-prod", Params: map[string]string{"project": "acme-prod", "instance": "orders"}}, resources.KindSQLInstance, "gold"},
	}
	for _, c := range cases {
		ref, ok := resources.TargetOf(c.op)
		if !ok || ref.Kind != c.kind {
			t.Fatalf("TargetOf(%+v) = %+v, %v", c.op, ref, ok)
		}
		tg, err := l.Target(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range tg.Labels {
			got = append(got, v)
		}
		if !tg.Exists || strings.Join(got, ",") != c.labels {
			t.Errorf("%s: target = %+v", c.kind, tg)
		}
	}
	b, _ := l.Target(ctx, resources.Ref{Kind: resources.KindBucket, Name: "acme-prod-data"})
	if b.ProjectNumber != "415104041262" {
		t.Errorf("bucket project number = %q", b.ProjectNumber)
	}
	if _, ok := resources.TargetOf(gcp.Operation{Service: "iam", Project: "p"}); ok {
		t.Error("an IAM operation has a target kind")
	}
}

func TestLabelEditWithinTTL(t *testing.T) {
	f := world(t)
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	l := newLookup(t, f, resources.Options{TTL: 5 * time.Minute, KindTTL: map[string]time.Duration{resources.KindProject: time.Minute}, Now: clk.Now})
	ctx := context.Background()
	p, _ := l.Project(ctx, "acme-dev")
	if p.Labels["env"] != "dev" {
		t.Fatalf("labels = %v", p.Labels)
	}
	f.SetProjectLabels("acme-dev", map[string]string{"env": "prod"})
	clk.Advance(30 * time.Second)
	if p, _ := l.Project(ctx, "acme-dev"); p.Labels["env"] != "dev" {
		t.Fatalf("within the TTL the cached labels hold, got %v", p.Labels)
	}
	clk.Advance(31 * time.Second)
	if p, _ := l.Project(ctx, "acme-dev"); p.Labels["env"] != "prod" {
		t.Fatalf("after the project TTL the edit must show, got %v", p.Labels)
	}
}

func TestNotFoundForbiddenAndTimeout(t *testing.T) {
	f := world(t)
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	l := newLookup(t, f, resources.Options{NegativeTTL: 10 * time.Second, Timeout: 200 * time.Millisecond, Now: clk.Now})
	ctx := context.Background()

	b, err := l.Target(ctx, resources.Ref{Kind: resources.KindBucket, Name: "no-such-bucket"})
	if err != nil || b.Exists || len(b.Labels) != 0 {
		t.Fatalf("404: %+v, %v", b, err)
	}
	f.AddBucket("no-such-bucket", resourcestest.Bucket{ProjectNumber: "1"})
	if b, _ := l.Target(ctx, resources.Ref{Kind: resources.KindBucket, Name: "no-such-bucket"}); b.Exists {
		t.Fatal("a negative answer is cached for the negative TTL")
	}
	clk.Advance(11 * time.Second)
	if b, _ := l.Target(ctx, resources.Ref{Kind: resources.KindBucket, Name: "no-such-bucket"}); !b.Exists {
		t.Fatal("the negative answer outlived its TTL")
	}

	f.Fail("/v3/projects/", http.StatusForbidden)
	_, err = l.Project(ctx, "acme-secret")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "project acme-secret") {
		t.Fatalf("403: err = %v", err)
	}
	f.Fail("/v3/projects/", 0)

	f.SetDelay(time.Second)
	start := time.Now()
	_, err = l.Project(ctx, "acme-prod")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: err = %v", err)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Fatalf("the lookup waited %v, past its 200ms timeout", time.Since(start))
	}
	f.SetDelay(0)
	if p, err := l.Project(ctx, "acme-prod"); err != nil || !p.Exists {
		t.Fatalf("errors must not be cached: %+v, %v", p, err)
	}
}

// 1,000 concurrent lookups of one uncached project make one upstream call.
func TestConcurrentLookupsShareOneCall(t *testing.T) {
	f := world(t)
	f.SetDelay(50 * time.Millisecond)
	l := newLookup(t, f, resources.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := l.Project(context.Background(), "acme-prod")
			if err == nil && p.ID != "acme-prod" {
				err = errors.New("wrong project " + p.ID)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.Hits("project"); n != 1 {
		t.Fatalf("projects.get called %d times for 1,000 concurrent lookups", n)
	}
}

// Two replicas share answers through a real redis-server: the second one
// calls Google not at all, even when both ask at once.
func TestReplicasShareTheCacheThroughRedis(t *testing.T) {
	f := world(t)
	srv := redistest.Start(t)
	client := func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { c.Close() })
		return c
	}
	a := newLookup(t, f, resources.Options{Redis: client()})
	b := newLookup(t, f, resources.Options{Redis: client()})
	ctx := context.Background()
	if _, err := a.Project(ctx, "acme-prod"); err != nil {
		t.Fatal(err)
	}
	p, err := b.Project(ctx, "415104041262")
	if err != nil || p.ID != "acme-prod" {
		t.Fatalf("replica b: %+v, %v", p, err)
	}
	if n := f.Hits("project"); n != 1 || b.Fetches() != 0 {
		t.Fatalf("projects.get called %d times, replica b fetched %d; want 1 and 0", n, b.Fetches())
	}

	// Both at once on a fresh bucket: one fetch between them.
	f.SetDelay(100 * time.Millisecond)
	var wg sync.WaitGroup
	for _, l := range []*resources.Lookup{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tg, err := l.Target(ctx, resources.Ref{Kind: resources.KindBucket, Name: "acme-prod-data"}); err != nil || !tg.Exists {
				t.Errorf("bucket: %+v, %v", tg, err)
			}
		}()
	}
	wg.Wait()
	if n := f.Hits("bucket"); n != 1 {
		t.Fatalf("buckets.get called %d times by two replicas at once", n)
	}
}

// A Redis that is down costs the shared cache, not the lookups.
func TestRedisDownLooksUpDirectly(t *testing.T) {
	f := world(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	srv.Stop()
	l := newLookup(t, f, resources.Options{Redis: c})
	p, err := l.Project(context.Background(), "acme-prod")
	if err != nil || p.ID != "acme-prod" {
		t.Fatalf("%+v, %v", p, err)
	}
}
