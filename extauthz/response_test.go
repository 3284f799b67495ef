package extauthz

import (
	"slices"
	"testing"

	"github.com/airlockhq/airlock/authz"
)

// TestAllowedRequestLosesCredentialsAndRanges: every allowed request goes
// on without the agent's credential and without a range (a full answer is
// a legal answer to a range request; a slice could hide a secret's marker
// from masking).
func TestAllowedRequestLosesCredentialsAndRanges(t *testing.T) {
	ok := response(&authz.Result{Outcome: authz.Allowed, RequestID: "r"}).GetOkResponse()
	for _, h := range []string{"authorization", "proxy-authorization", "range", "if-range"} {
		if !slices.Contains(ok.GetHeadersToRemove(), h) {
			t.Errorf("%s is not removed from allowed requests: %v", h, ok.GetHeadersToRemove())
		}
	}
	for _, q := range []string{"access_token", "oauth_token"} {
		if !slices.Contains(ok.GetQueryParametersToRemove(), q) {
			t.Errorf("query parameter %s is not removed: %v", q, ok.GetQueryParametersToRemove())
		}
	}
}
