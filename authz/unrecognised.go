package authz

import (
	"fmt"

	"github.com/airlockhq/airlock/gcp"
)

// Unrecognised is what the gateway does with a request whose operation it
// cannot recognise (config authz.unrecognised): an unknown host, a method
// the host's API does not have, a gRPC call, a batch with such a part.
type Unrecognised string

const (
	// RefuseUnrecognised refuses such a request before policy, whatever
	// the policies say, with INVALID_REQUEST and a message that tells the
	// agent what to send instead. It is the default.
	RefuseUnrecognised Unrecognised = "refuse"
	// UnrecognisedToPolicy hands such a request to policy, where
	// gcp.method is empty.
	UnrecognisedToPolicy Unrecognised = "policy"
)

// ParseUnrecognised reads a config value; "" is the default, refuse.
func ParseUnrecognised(s string) (Unrecognised, error) {
	switch Unrecognised(s) {
	case "", RefuseUnrecognised:
		return RefuseUnrecognised, nil
	case UnrecognisedToPolicy:
		return UnrecognisedToPolicy, nil
	}
	return "", fmt.Errorf("authz: unrecognised must be refuse or policy, not %q", s)
}

// refusedBeforePolicy is the refusal of a recognised request that no
// policy may see: its operation is unknown and the operator did not hand
// such requests to policy. It is nil otherwise.
func refusedBeforePolicy(rec gcp.Recognized, mode Unrecognised) error {
	if mode == UnrecognisedToPolicy {
		return nil
	}
	return rec.UnrecognizedError()
}
