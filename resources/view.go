package resources

import (
	"context"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

// Backend answers lookups: a Lookup (Google, cached) or a Static world
// declared by a policy test.
type Backend interface {
	// Project looks a project up by id or number; a missing project has
	// Exists false and no error.
	Project(ctx context.Context, idOrNumber string) (Project, error)
	// Ancestry lists the folders and organization above parent, nearest
	// first, with their display names.
	Ancestry(ctx context.Context, parent string) (ids, names []string, err error)
	// Tags returns the effective tags of the project with this number.
	Tags(ctx context.Context, number string) (map[string]string, error)
	// Target looks a request's target up.
	Target(ctx context.Context, ref Ref) (Target, error)
}

var _ Backend = (*Lookup)(nil)

// View answers the resource.* variables of one request from a Backend; it
// implements policies.Resources. The project is looked up once per view.
type View struct {
	b  Backend
	op gcp.Operation

	mu         sync.Mutex
	project    *Project
	projectErr error
}

var _ policies.Resources = (*View)(nil)

// ForRequest returns the view of op's resource.
func ForRequest(b Backend, op gcp.Operation) *View { return &View{b: b, op: op} }

// projectRef is how the request names its project: the URL's project, or
// for a bucket (whose path names no project) the bucket's project number.
func (v *View) projectRef(ctx context.Context) (string, error) {
	if v.op.Project != "" {
		return v.op.Project, nil
	}
	ref, ok := TargetOf(v.op)
	if !ok || ref.Kind != KindBucket {
		return "", nil
	}
	t, err := v.b.Target(ctx, ref)
	if err != nil {
		return "", err
	}
	return t.ProjectNumber, nil
}

func (v *View) lookupProject(ctx context.Context) (Project, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.project != nil || v.projectErr != nil {
		if v.projectErr != nil {
			return Project{}, v.projectErr
		}
		return *v.project, nil
	}
	ref, err := v.projectRef(ctx)
	var p Project
	if err == nil && ref != "" {
		p, err = v.b.Project(ctx, ref)
	}
	if err != nil {
		v.projectErr = err
		return Project{}, err
	}
	v.project = &p
	return p, nil
}

// ProjectID implements policies.Resources: the URL's project id as it is;
// a project number resolved to its id; a bucket's project id. A number
// Google does not know stays the number.
func (v *View) ProjectID(ctx context.Context) (string, error) {
	if p := v.op.Project; p != "" && !IsProjectNumber(p) {
		return p, nil
	}
	p, err := v.lookupProject(ctx)
	if err != nil {
		return "", err
	}
	if p.Exists {
		return p.ID, nil
	}
	return v.op.Project, nil
}

// Project implements policies.Resources.
func (v *View) Project(ctx context.Context) (policies.ResourceProject, error) {
	p, err := v.lookupProject(ctx)
	if err != nil {
		return policies.ResourceProject{}, err
	}
	return policies.ResourceProject{Exists: p.Exists, ID: p.ID, Number: p.Number, Name: p.DisplayName, Labels: p.Labels}, nil
}

// Ancestry implements policies.Resources.
func (v *View) Ancestry(ctx context.Context) ([]string, []string, error) {
	p, err := v.lookupProject(ctx)
	if err != nil || p.Parent == "" {
		return []string{}, []string{}, err
	}
	return v.b.Ancestry(ctx, p.Parent)
}

// ProjectTags implements policies.Resources.
func (v *View) ProjectTags(ctx context.Context) (map[string]string, error) {
	p, err := v.lookupProject(ctx)
	if err != nil || !p.Exists {
		return map[string]string{}, err
	}
	return v.b.Tags(ctx, p.Number)
}

// Target implements policies.Resources. A request on a project itself
// (projects.get, setIamPolicy on projects/P) has the project as target.
func (v *View) Target(ctx context.Context) (policies.ResourceTarget, error) {
	if ref, ok := TargetOf(v.op); ok {
		t, err := v.b.Target(ctx, ref)
		if err != nil {
			return policies.ResourceTarget{}, err
		}
		return policies.ResourceTarget{Kind: t.Kind, Exists: t.Exists, Labels: t.Labels, Tags: map[string]string{}}, nil
	}
	if !onProject(v.op) {
		return policies.ResourceTarget{}, nil
	}
	p, err := v.lookupProject(ctx)
	if err != nil {
		return policies.ResourceTarget{}, err
	}
	tags := map[string]string{}
	if p.Exists {
		if tags, err = v.b.Tags(ctx, p.Number); err != nil {
			return policies.ResourceTarget{}, err
		}
	}
	return policies.ResourceTarget{Kind: KindProject, Exists: p.Exists, Labels: p.Labels, Tags: tags}, nil
}

// onProject reports whether op acts on its project itself: its resource
// is projects/P.
func onProject(op gcp.Operation) bool {
	if op.Project == "" {
		return false
	}
	rest, ok := strings.CutPrefix(op.Resource, "projects/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}
