package resources

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrNoIAMPolicy says that the request is not a setIamPolicy whose current
// policy this package knows how to read.
var ErrNoIAMPolicy = errors.New("not a setIamPolicy request whose current policy can be read")

// IAMPolicy fetches the current IAM policy of the resource that a
// setIamPolicy request acts on, with the matching getIamPolicy of the same
// API and airlock's own lookup credential (which then needs the
// getIamPolicy permission, e.g. roles/iam.securityReviewer). method is the
// operation id (compute.instances.setIamPolicy) and path the request's
// normalised path. The three shapes Google uses are handled:
//
//   - custom methods: POST /v1/RESOURCE:setIamPolicy -> POST /v1/RESOURCE:getIamPolicy
//   - Cloud Storage: PUT /storage/v1/b/BUCKET/iam -> GET the same path
//   - Compute Engine: POST .../RESOURCE/setIamPolicy -> GET .../RESOURCE/getIamPolicy
//
// The answer is not cached: an approver is shown the policy as it stands.
func (l *Lookup) IAMPolicy(ctx context.Context, method, path string) (json.RawMessage, error) {
	service, _, _ := strings.Cut(method, ".")
	if !strings.HasSuffix(method, ".setIamPolicy") || !validService(service) || !validMethodID(method) || !safeIAMPath(path) {
		return nil, ErrNoIAMPolicy
	}
	base := l.base(service)
	var req *http.Request
	var err error
	switch {
	case strings.HasSuffix(path, ":setIamPolicy"):
		u := base + strings.TrimSuffix(path, ":setIamPolicy") + ":getIamPolicy"
		body := `{"options":{"requestedPolicyVersion":3}}`
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte(body)))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	case service == "storage" && strings.HasSuffix(path, "/iam"):
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?optionsRequestedPolicyVersion=3", nil)
	case service == "compute" && strings.HasSuffix(path, "/setIamPolicy"):
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+strings.TrimSuffix(path, "/setIamPolicy")+"/getIamPolicy?optionsRequestedPolicyVersion=3", nil)
	default:
		return nil, ErrNoIAMPolicy
	}
	if err != nil {
		return nil, fmt.Errorf("resources: IAM policy of %s: %w", clip(path), err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	l.fetches.Add(1)
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resources: IAM policy of %s: %w", clip(path), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("resources: IAM policy of %s: %w", clip(path), err)
	}
	if resp.StatusCode/100 != 2 {
		var ge struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(b, &ge) == nil && ge.Error.Message != "" {
			msg = ge.Error.Message
		}
		return nil, fmt.Errorf("resources: IAM policy of %s: HTTP %d: %s", clip(path), resp.StatusCode, clip(msg))
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("resources: IAM policy of %s: the answer is not JSON", clip(path))
	}
	return json.RawMessage(b), nil
}

// validService is a Google API's host label: lower-case letters and digits.
func validService(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validMethodID is a Discovery method id: dotted names of letters and digits.
func validMethodID(m string) bool {
	if len(m) > 256 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

// safeIAMPath admits an absolute path without a query, dot segments,
// empty segments or characters beyond those of Google's resource names.
func safeIAMPath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > 1024 || strings.Contains(p, "//") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." || seg == "" {
			return false
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-_.:~@%", c) >= 0) {
			return false
		}
	}
	return true
}
