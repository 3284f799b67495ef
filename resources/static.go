package resources

import (
	"context"
	"strings"

	"github.com/airlockhq/airlock/policies"
)

// Static is a Backend over a declared world (a policy test's resources:),
// so that policy tests run offline. What is not declared does not exist.
type Static struct {
	projects map[string]Project // by id and by number
	tags     map[string]map[string]string
	nodes    map[string]policies.TestFolder
	buckets  map[string]Target
	targets  map[string]Target
}

var _ Backend = (*Static)(nil)

// NewStatic builds the world of w (nil: an empty world).
func NewStatic(w *policies.TestResources) *Static {
	s := &Static{projects: map[string]Project{}, tags: map[string]map[string]string{}, nodes: map[string]policies.TestFolder{},
		buckets: map[string]Target{}, targets: map[string]Target{}}
	if w == nil {
		return s
	}
	for _, p := range w.Projects {
		pr := Project{Exists: true, ID: p.ID, Number: p.Number, DisplayName: p.Name, Labels: p.Labels, Parent: p.Parent}
		s.projects[p.ID] = pr
		s.projects[p.Number] = pr
		s.tags[p.Number] = p.Tags
	}
	for _, f := range w.Folders {
		s.nodes[f.ID] = f
	}
	for _, b := range w.Buckets {
		t := Target{Kind: KindBucket, Name: b.Name, Exists: true, Labels: b.Labels, ProjectNumber: b.Project}
		if p, ok := s.projects[b.Project]; ok {
			t.ProjectNumber = p.Number
		}
		s.buckets[b.Name] = t
	}
	for _, t := range w.Targets {
		s.targets[t.Name] = Target{Name: t.Name, Exists: true, Labels: t.Labels}
	}
	return s
}

// Project implements Backend.
func (s *Static) Project(_ context.Context, idOrNumber string) (Project, error) {
	return s.projects[idOrNumber], nil
}

// Ancestry implements Backend.
func (s *Static) Ancestry(_ context.Context, parent string) ([]string, []string, error) {
	var ids, names []string
	for cur := parent; cur != "" && len(ids) < maxAncestry; {
		n := s.nodes[cur]
		ids = append(ids, cur)
		names = append(names, n.Name)
		if strings.HasPrefix(cur, "organizations/") {
			break
		}
		cur = n.Parent
	}
	return ids, names, nil
}

// Tags implements Backend.
func (s *Static) Tags(_ context.Context, number string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range s.tags[number] {
		out[k] = v
		if i := strings.IndexByte(k, '/'); i >= 0 {
			out[k[i+1:]] = v
		}
	}
	return out, nil
}

// Target implements Backend.
func (s *Static) Target(_ context.Context, ref Ref) (Target, error) {
	if ref.Kind == KindBucket {
		if t, ok := s.buckets[ref.Name]; ok {
			return t, nil
		}
		return Target{Kind: ref.Kind, Name: ref.Name}, nil
	}
	var path string
	switch ref.Kind {
	case KindInstance:
		path = "projects/" + ref.Project + "/zones/" + ref.Location + "/instances/" + ref.Name
	case KindDisk:
		path = "projects/" + ref.Project + "/zones/" + ref.Location + "/disks/" + ref.Name
	case KindSecret:
		path = ref.Name
	case KindSQLInstance:
		path = "projects/" + ref.Project + "/instances/" + ref.Name
	}
	t, ok := s.targets[path]
	if !ok {
		return Target{Kind: ref.Kind, Name: ref.Name}, nil
	}
	t.Kind = ref.Kind
	return t, nil
}
