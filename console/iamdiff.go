package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/approvals"
)

// FetchPolicy returns the current IAM policy of the resource a
// setIamPolicy request acts on (operation id, request path).
type FetchPolicy func(ctx context.Context, method, path string) (json.RawMessage, error)

// Binding is one role granted to members, under a condition when it has one.
type Binding struct {
	Role      string   `json:"role"`
	Members   []string `json:"members"`
	Condition string   `json:"condition,omitempty"`
}

// PolicyDiff is what an approval's IAM policy change does: the bindings it
// sets and, when the current policy could be read, the members it adds to
// and removes from each role.
type PolicyDiff struct {
	// Applies: the approval is a setIamPolicy.
	Applies bool `json:"applies"`
	// Requested are the bindings the request sets (the whole new policy).
	Requested []Binding `json:"requested"`
	// Compared: the current policy was read and Added and Removed hold.
	Compared bool `json:"compared"`
	// Added and Removed are the members each role gains and loses.
	Added   []Binding `json:"added"`
	Removed []Binding `json:"removed"`
	// Note says why there is no comparison, or what limits it.
	Note string `json:"note,omitempty"`
}

// PolicyDiffer describes approvals' IAM changes, fetching current policies
// with fetch (nil: resource lookups are off).
func PolicyDiffer(fetch FetchPolicy) func(ctx context.Context, a approvals.Approval) (any, error) {
	return func(ctx context.Context, a approvals.Approval) (any, error) {
		return diffPolicy(ctx, a, fetch), nil
	}
}

type iamPolicy struct {
	Bindings []struct {
		Role      string   `json:"role"`
		Members   []string `json:"members"`
		Condition *struct {
			Title      string `json:"title"`
			Expression string `json:"expression"`
		} `json:"condition"`
	} `json:"bindings"`
}

func (p *iamPolicy) list() []Binding {
	out := []Binding{}
	for _, b := range p.Bindings {
		nb := Binding{Role: b.Role, Members: append([]string{}, b.Members...)}
		if b.Condition != nil {
			nb.Condition = b.Condition.Expression
			if b.Condition.Title != "" {
				nb.Condition = b.Condition.Title + ": " + b.Condition.Expression
			}
		}
		sort.Strings(nb.Members)
		out = append(out, nb)
	}
	return out
}

// requestedPolicy reads the new policy from a setIamPolicy body: under
// "policy" (most APIs, Compute Engine), or the body itself (Cloud Storage).
func requestedPolicy(body string) (*iamPolicy, bool) {
	var wrapped struct {
		Policy   *iamPolicy      `json:"policy"`
		Bindings json.RawMessage `json:"bindings"`
	}
	if err := json.Unmarshal([]byte(body), &wrapped); err != nil {
		return nil, false
	}
	if wrapped.Policy != nil {
		return wrapped.Policy, true
	}
	var p iamPolicy
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, false
	}
	return &p, true
}

func diffPolicy(ctx context.Context, a approvals.Approval, fetch FetchPolicy) PolicyDiff {
	op := a.Request.Operation
	d := PolicyDiff{Requested: []Binding{}, Added: []Binding{}, Removed: []Binding{}}
	if !strings.HasSuffix(op, ".setIamPolicy") {
		d.Note = "this request does not change an IAM policy"
		return d
	}
	d.Applies = true
	req, ok := requestedPolicy(a.Request.BodyExcerpt)
	if !ok {
		d.Note = "the request body is not a whole JSON policy (it may have been cut at 32 KiB), so its bindings cannot be listed; read the body below"
		return d
	}
	d.Requested = req.list()
	if fetch == nil {
		d.Note = "resource lookups are off (resources.credential), so the current policy cannot be read: these are all the bindings the request sets, not what it changes"
		return d
	}
	u, err := url.Parse(a.Request.URL)
	if err != nil {
		d.Note = "the request's URL cannot be read, so the current policy cannot be fetched"
		return d
	}
	raw, err := fetch(ctx, op, u.Path)
	if err != nil {
		d.Note = "the current policy could not be read (" + clip(strings.TrimPrefix(err.Error(), "resources: "), 300) + "): these are all the bindings the request sets, not what it changes"
		if errors.Is(err, context.DeadlineExceeded) {
			d.Note = "reading the current policy timed out: these are all the bindings the request sets, not what it changes"
		}
		return d
	}
	var cur iamPolicy
	if err := json.Unmarshal(raw, &cur); err != nil {
		d.Note = "the current policy Google returned is not an IAM policy"
		return d
	}
	d.Compared = true
	d.Added, d.Removed = diffBindings(cur.list(), d.Requested)
	if len(d.Added) == 0 && len(d.Removed) == 0 {
		d.Note = "the request sets the policy as it already is"
	}
	return d
}

// diffBindings returns, per role and condition, the members of after not
// in before (added) and of before not in after (removed).
func diffBindings(before, after []Binding) (added, removed []Binding) {
	key := func(b Binding) string { return b.Role + "\x00" + b.Condition }
	members := func(list []Binding) (map[string]map[string]bool, map[string]Binding) {
		m, by := map[string]map[string]bool{}, map[string]Binding{}
		for _, b := range list {
			k := key(b)
			if m[k] == nil {
				m[k], by[k] = map[string]bool{}, b
			}
			for _, x := range b.Members {
				m[k][x] = true
			}
		}
		return m, by
	}
	bm, bb := members(before)
	am, ab := members(after)
	diff := func(from, minus map[string]map[string]bool, by map[string]Binding) []Binding {
		out := []Binding{}
		keys := make([]string, 0, len(from))
		for k := range from {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var ms []string
			for x := range from[k] {
				if !minus[k][x] {
					ms = append(ms, x)
				}
			}
			if len(ms) > 0 {
				sort.Strings(ms)
				out = append(out, Binding{Role: by[k].Role, Condition: by[k].Condition, Members: ms})
			}
		}
		return out
	}
	return diff(am, bm, ab), diff(bm, am, bb)
}
