package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxAncestry bounds the folder chain above a project (Google allows ten
// levels of folders).
const maxAncestry = 12

// maxResponse bounds a response body read from Google.
const maxResponse = 4 << 20

// errNotFound is a 404 from Google.
var errNotFound = errors.New("not found")

// base is the root URL of service.
func (l *Lookup) base(service string) string {
	if b := l.opts.Endpoints[service]; b != "" {
		return strings.TrimRight(b, "/")
	}
	return "https://" + service + ".googleapis.com"
}

// getJSON GETs u into v. A 404 is errNotFound; any other non-2xx answer is
// an error carrying Google's message.
func (l *Lookup) getJSON(ctx context.Context, what, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("resources: %s: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("resources: %s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("resources: %s: %w", what, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode/100 != 2:
		var ge struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(body, &ge) == nil && ge.Error.Message != "" {
			msg = ge.Error.Message
		}
		if resp.StatusCode == http.StatusForbidden {
			msg += " (Google answers 403 both for a resource that does not exist and for one airlock's lookup credential may not read)"
		}
		return fmt.Errorf("resources: %s: HTTP %d: %s", what, resp.StatusCode, clip(msg))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("resources: %s: the answer is not the expected JSON: %w", what, err)
	}
	return nil
}

type crmProject struct {
	Name        string            `json:"name"` // projects/NUMBER
	Parent      string            `json:"parent"`
	ProjectID   string            `json:"projectId"`
	DisplayName string            `json:"displayName"`
	Labels      map[string]string `json:"labels"`
}

func (l *Lookup) fetchProject(ctx context.Context, ref string) (any, bool, error) {
	var p crmProject
	err := l.getJSON(ctx, "project "+ref, l.base("cloudresourcemanager")+"/v3/projects/"+url.PathEscape(ref), &p)
	if errors.Is(err, errNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	number, ok := strings.CutPrefix(p.Name, "projects/")
	if !ok || !IsProjectNumber(number) || p.ProjectID == "" {
		return nil, false, fmt.Errorf("resources: project %s: the answer names %q (%q), not projects/NUMBER", ref, clip(p.Name), clip(p.ProjectID))
	}
	return Project{Exists: true, ID: p.ProjectID, Number: number, DisplayName: p.DisplayName, Labels: p.Labels, Parent: p.Parent}, true, nil
}

type crmNode struct {
	Name        string `json:"name"`
	Parent      string `json:"parent"`
	DisplayName string `json:"displayName"`
}

// node looks up a folder or an organization ("folders/123").
func (l *Lookup) node(ctx context.Context, name string) (crmNode, error) {
	kind := KindFolder
	if strings.HasPrefix(name, "organizations/") {
		kind = KindOrganization
	} else if !strings.HasPrefix(name, "folders/") {
		return crmNode{}, fmt.Errorf("resources: ancestor %q is neither a folder nor an organization", clip(name))
	}
	id := name[strings.IndexByte(name, '/')+1:]
	if !IsProjectNumber(id) {
		return crmNode{}, fmt.Errorf("resources: ancestor %q has no numeric id", clip(name))
	}
	v, found, err := l.cache.get(ctx, kind, id, func(ctx context.Context) (any, bool, error) {
		var n crmNode
		err := l.getJSON(ctx, kind+" "+id, l.base("cloudresourcemanager")+"/v3/"+name, &n)
		if errors.Is(err, errNotFound) {
			return nil, false, nil
		}
		return n, err == nil, err
	}, decodeAs[crmNode]())
	if err != nil {
		return crmNode{}, err
	}
	if !found {
		return crmNode{Name: name}, nil
	}
	return v.(crmNode), nil
}

// Ancestry returns the folders and organization above parent (a project's
// parent), nearest first, with their display names.
func (l *Lookup) Ancestry(ctx context.Context, parent string) (ids, names []string, err error) {
	for cur := parent; cur != "" && len(ids) < maxAncestry; {
		n, err := l.node(ctx, cur)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, cur)
		names = append(names, n.DisplayName)
		if strings.HasPrefix(cur, "organizations/") {
			break
		}
		cur = n.Parent
	}
	return ids, names, nil
}

type effectiveTags struct {
	EffectiveTags []struct {
		NamespacedTagKey   string `json:"namespacedTagKey"`   // 123456/env
		NamespacedTagValue string `json:"namespacedTagValue"` // 123456/env/production
	} `json:"effectiveTags"`
	NextPageToken string `json:"nextPageToken"`
}

// maxTagPages bounds the pages of effective tags read for one project.
const maxTagPages = 20

// Tags returns the effective tags of the project with this number, keyed
// by namespaced key and, where no two keys share it, by short key.
func (l *Lookup) Tags(ctx context.Context, number string) (map[string]string, error) {
	if !IsProjectNumber(number) {
		return nil, fmt.Errorf("resources: tags of %q: not a project number", clip(number))
	}
	v, found, err := l.cache.get(ctx, KindTags, number, func(ctx context.Context) (any, bool, error) {
		tags := map[string]string{}
		short := map[string]int{}
		shortVal := map[string]string{}
		token := ""
		for page := 0; page < maxTagPages; page++ {
			q := url.Values{"parent": {"//cloudresourcemanager.googleapis.com/projects/" + number}, "pageSize": {"500"}}
			if token != "" {
				q.Set("pageToken", token)
			}
			var et effectiveTags
			err := l.getJSON(ctx, "effective tags of project "+number, l.base("cloudresourcemanager")+"/v3/effectiveTags?"+q.Encode(), &et)
			if errors.Is(err, errNotFound) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			for _, t := range et.EffectiveTags {
				value := t.NamespacedTagValue
				if i := strings.LastIndexByte(value, '/'); i >= 0 {
					value = value[i+1:]
				}
				tags[t.NamespacedTagKey] = value
				k := t.NamespacedTagKey
				if i := strings.IndexByte(k, '/'); i >= 0 {
					k = k[i+1:]
				}
				short[k]++
				shortVal[k] = value
			}
			if token = et.NextPageToken; token == "" {
				break
			}
		}
		for k, n := range short {
			if _, clash := tags[k]; n == 1 && !clash {
				tags[k] = shortVal[k]
			}
		}
		return tags, true, nil
	}, decodeAs[map[string]string]())
	if err != nil || !found {
		return map[string]string{}, err
	}
	return v.(map[string]string), nil
}

func (l *Lookup) fetchTarget(ctx context.Context, ref Ref) (any, bool, error) {
	var (
		what, u string
		labels  func() map[string]string
		t       = Target{Kind: ref.Kind, Name: ref.Name, Exists: true}
	)
	var plain struct {
		Labels        map[string]string `json:"labels"`
		ProjectNumber string            `json:"projectNumber"`
		Settings      struct {
			UserLabels map[string]string `json:"userLabels"`
		} `json:"settings"`
	}
	labels = func() map[string]string { return plain.Labels }
	switch ref.Kind {
	case KindBucket:
		what = "bucket " + ref.Name
		u = l.base("storage") + "/storage/v1/b/" + url.PathEscape(ref.Name) + "?fields=name,projectNumber,labels"
	case KindInstance, KindDisk:
		coll := "instances"
		if ref.Kind == KindDisk {
			coll = "disks"
		}
		what = ref.Kind + " " + ref.Project + "/" + ref.Location + "/" + ref.Name
		u = l.base("compute") + "/compute/v1/projects/" + url.PathEscape(ref.Project) + "/zones/" + url.PathEscape(ref.Location) + "/" + coll + "/" + url.PathEscape(ref.Name) + "?fields=name,labels"
	case KindSecret:
		what = "secret " + ref.Name
		u = l.base("secretmanager") + "/v1/" + escapePath(ref.Name)
	case KindSQLInstance:
		what = "Cloud SQL instance " + ref.Project + "/" + ref.Name
		u = l.base("sqladmin") + "/v1/projects/" + url.PathEscape(ref.Project) + "/instances/" + url.PathEscape(ref.Name)
		labels = func() map[string]string { return plain.Settings.UserLabels }
	default:
		return nil, false, fmt.Errorf("resources: unknown target kind %q", ref.Kind)
	}
	err := l.getJSON(ctx, what, u, &plain)
	if errors.Is(err, errNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	t.Labels = labels()
	t.ProjectNumber = plain.ProjectNumber
	return t, true, nil
}

// escapePath escapes each segment of a resource path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
