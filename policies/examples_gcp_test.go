package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/examples"
)

// TestExamplesWithRecognizer runs the example tests with the real operation
// recogniser and catalog, so that the method ids the examples name are the
// ones the gateway sees.
func TestExamplesWithRecognizer(t *testing.T) {
	rec := gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	build := func(_ context.Context, tc policies.TestCase) (policies.Input, error) {
		u, err := url.Parse(tc.URL)
		if err != nil {
			return policies.Input{}, err
		}
		r, err := rec.Recognize(gcp.Request{Method: tc.Method, Host: u.Host, Path: u.RequestURI(), Headers: tc.Headers, Body: []byte(tc.Body)})
		if err != nil {
			return policies.Input{}, err
		}
		in := policies.Input{
			Request:   policies.Request{Method: r.Method, Host: r.Host, Path: r.Path, Query: r.Query, Headers: tc.Headers},
			Identity:  tc.Identity,
			GCP:       r.Operation,
			SessionID: tc.Session,
		}
		if tc.Body != "" {
			if err := json.Unmarshal([]byte(tc.Body), &in.Request.Body); err != nil {
				return policies.Input{}, fmt.Errorf("body: %w", err)
			}
		}
		return in, nil
	}
	set, err := policies.LoadFS(policies.LoadOptions{}, examples.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	results := set.RunTests(context.Background(), build)
	if len(results) == 0 {
		t.Fatal("no example tests")
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case, r.Failure())
		}
	}
}
