package authz

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/resources"
)

// TestInputBuilder returns the builder `airlock policy test` uses: a test
// case's request goes through the same recognition and input building as a
// request from Envoy, so a passing test means what it says in production.
// Requests whose operation airlock cannot recognise are refused before
// policy, as the gateway does by default; TestInputBuilderFor takes the
// gateway's authz.unrecognised setting.
func TestInputBuilder(rec *gcp.Recognizer) policies.InputBuilder {
	return TestInputBuilderFor(rec, RefuseUnrecognised)
}

// TestInputBuilderFor is TestInputBuilder for a gateway that treats
// unrecognised operations as mode says. A request the gateway would refuse
// before policy gives an error wrapping policies.ErrRefusedBeforePolicy,
// which a test expecting `invalid` expects.
func TestInputBuilderFor(rec *gcp.Recognizer, mode Unrecognised) policies.InputBuilder {
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
		var m *mcp.Request
		if err == nil && r.Operation.Method == "" && mcp.IsEndpoint(r.Host, r.Path) {
			// A request to an MCP endpoint, read as the gateway reads it.
			res := &Result{Recognized: r}
			eng := &Engine{opts: Options{MCP: mcp.NewRecognizer(rec, nil, nil)}}
			if err = eng.recognizeMCP(res, req); err == nil {
				r, m = res.Recognized, res.MCP
			} else if re, ok := err.(*mcp.RequestError); ok {
				err = &gcp.RequestError{Msg: re.Msg}
			}
		}
		if err == nil {
			err = refusedBeforePolicy(r, mode)
		}
		if err != nil {
			msg := err.Error()
			var re *gcp.RequestError
			if errors.As(err, &re) {
				msg = re.Msg
			}
			return policies.Input{}, fmt.Errorf("%w: %s", policies.ErrRefusedBeforePolicy, msg)
		}
		if r.Parts != nil {
			// The gateway decides a batch part by part; a test gives one
			// input, which would be the batch as an unknown operation.
			return policies.Input{}, fmt.Errorf("the request is a batch of %d parts, which the gateway decides part by part; write one test per part", len(r.Parts))
		}
		if m != nil && len(m.Calls) != 1 {
			return policies.Input{}, fmt.Errorf("the request is an MCP batch of %d messages, which the gateway decides message by message; write one test per message", len(m.Calls))
		}
		in := buildInput(r, tc.Identity, req, tc.Session, req.Time, true)
		if m != nil {
			in = buildMCPInput(m, m.Calls[0], r, tc.Identity, req, tc.Session, req.Time)
		}
		// A test with resources: runs as a gateway with lookups, offline,
		// against the world it declares; one without, as a gateway without
		// lookups (resource.available is false).
		if tc.Resources != nil {
			in.Resources = resources.ForRequest(resources.NewStatic(tc.Resources), r.Operation)
		}
		return in, nil
	}
}
