package authz

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/resources"
)

// TestInputBuilder returns the builder `airlock policy test` uses: a test
// case's request goes through the same recognition and input building as a
// request from Envoy, so a passing test means what it says in production.
func TestInputBuilder(rec *gcp.Recognizer) policies.InputBuilder {
	return func(ctx context.Context, tc policies.TestCase) (policies.Input, error) {
		u, err := url.Parse(tc.URL)
		if err != nil || u.Host == "" {
			return policies.Input{}, fmt.Errorf("request url %q is not an absolute URL", tc.URL)
		}
		headers := map[string]string{}
		for k, v := range tc.Headers {
			headers[strings.ToLower(k)] = v
		}
		method := tc.Method
		if method == "" {
			method = "GET"
		}
		req := Request{
			Method:  method,
			Host:    u.Host,
			Path:    u.RequestURI(),
			Headers: headers,
			Body:    []byte(tc.Body),
			Time:    time.Now(),
		}
		r, err := rec.Recognize(gcp.Request{Method: req.Method, Host: req.Host, Path: req.Path, Headers: headers, Body: req.Body, MaxBodyBytes: 1 << 20})
		if err != nil {
			return policies.Input{}, fmt.Errorf("the gateway would refuse this request before policy: %w", err)
		}
		in := buildInput(r, tc.Identity, req, tc.Session, req.Time)
		// A test runs offline against the world it declares (empty if none).
		in.Resources = resources.ForRequest(resources.NewStatic(tc.Resources), r.Operation)
		return in, nil
	}
}
