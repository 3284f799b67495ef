// Package identity verifies the OIDC tokens that agents and approvers present
// and turns them into an Identity that policies can reason about.
package identity

import (
	"context"
	"time"
)

// Identity is who is asking: the verified claims of an OIDC token.
type Identity struct {
	// Subject is the token's "sub" claim.
	Subject string
	// Email is the "email" claim, when present.
	Email string
	// EmailVerified is true when the issuer vouches for Email: the token
	// says "email_verified": true, the issuer is configured with
	// trust_email, or a Google token carries an "hd" (Workspace domain)
	// claim equal to the e-mail's domain. Only a verified e-mail may stand
	// for a person (user:EMAIL approvers).
	EmailVerified bool
	// Issuer is the token's "iss" claim.
	Issuer string
	// Groups come from the issuer's configured groups claim.
	Groups []string
	// Actor is the RFC 8693 "act.sub" claim: the agent acting for Subject.
	Actor string
	// Claims holds every claim of the token.
	Claims map[string]any
	// Expiry is when the token stops being valid.
	Expiry time.Time
}

// Verifier turns a raw bearer token into an Identity. Implementations return
// an *Error for every refusal so that callers can tell the agent why.
type Verifier interface {
	Verify(ctx context.Context, rawToken string) (Identity, error)
}

// ErrorKind classifies why a token was refused.
type ErrorKind int

const (
	// NoToken: no "Authorization: Bearer" header was sent.
	NoToken ErrorKind = iota + 1
	// Malformed: the token is not a well-formed JWT.
	Malformed
	// Expired: the token's exp is in the past (or nbf in the future).
	Expired
	// WrongAudience: the token was not issued for this gateway.
	WrongAudience
	// UnknownIssuer: the token's issuer is not configured.
	UnknownIssuer
	// BadSignature: the signature does not verify or the algorithm is not allowed.
	BadSignature
	// Unavailable: the issuer's keys could not be fetched; retrying may help.
	Unavailable
	// NotAllowed: the issuer signed the token, but its subject, e-mail or
	// Workspace domain is outside the issuer's allowed_* restrictions.
	NotAllowed
	// LifetimeTooLong: the token lives longer than the configured maximum.
	LifetimeTooLong
)

var kindNames = map[ErrorKind]string{
	NoToken:         "no_token",
	Malformed:       "malformed",
	Expired:         "expired",
	WrongAudience:   "wrong_audience",
	UnknownIssuer:   "unknown_issuer",
	BadSignature:    "bad_signature",
	Unavailable:     "unavailable",
	NotAllowed:      "not_allowed",
	LifetimeTooLong: "lifetime_too_long",
}

// String returns a stable snake_case name, used in metrics and refusal metadata.
func (k ErrorKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Error is a refusal of a token. Msg is written for the agent: it says what
// was wrong without echoing the token.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return "identity: " + e.Msg }
