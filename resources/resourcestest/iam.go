package resourcestest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// SetIAMPolicy sets the IAM policy getIamPolicy answers for the resource
// at path, as the request names it: /v1/projects/P (Resource Manager,
// answered at /v1/projects/P:getIamPolicy), /storage/v1/b/B/iam, or a
// Compute Engine resource path ending in /getIamPolicy.
func (f *Fake) SetIAMPolicy(path string, policy map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.iam == nil {
		f.iam = map[string]map[string]any{}
	}
	f.iam[path] = policy
}

// serveIAM answers getIamPolicy calls; it reports whether r was one.
func (f *Fake) serveIAM(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	key := ""
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(p, ":getIamPolicy"):
		key = strings.TrimSuffix(p, ":getIamPolicy")
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/storage/v1/b/") && strings.HasSuffix(p, "/iam"):
		key = p
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/getIamPolicy"):
		key = p
	default:
		return false
	}
	f.mu.Lock()
	f.hits["iam"]++
	pol, ok := f.iam[key]
	status := 0
	for prefix, st := range f.failures {
		if strings.HasPrefix(p, prefix) {
			status = st
		}
	}
	f.mu.Unlock()
	switch {
	case status != 0:
		googleError(w, status, "PERMISSION_DENIED", "The caller does not have permission")
	case !ok:
		googleError(w, 404, "NOT_FOUND", p+" not found")
	default:
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_ = json.NewEncoder(w).Encode(pol)
	}
	return true
}
