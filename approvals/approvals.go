// Package approvals holds just-in-time approvals: a request that a policy
// sends to a human waits as a pending approval, keyed by the fingerprint of
// the request, until enough approvers approve it (the request may then pass,
// once or for a window) or one denies it. State lives in a Store: Redis for
// several replicas, memory for one.
//
// Lifecycle: pending -> approved | denied | expired. An approved grant
// "once" is claimed by exactly one Gate, under a claim id the Gate makes
// itself (never a value the agent sends); Release gives the claim back when
// the request is refused after all. A grant "window" admits every request
// with the same fingerprint until its TTL ends. A denial stays the answer
// for the fingerprint for the rule's TTL, so a retry sees the reason.
//
// Bounds: one requester (issuer and subject) has at most
// Options.MaxPendingPerSubject pending approvals, counted atomically in the
// store's Gate; the strings of a request are cut at MaxFieldLen; List pages
// over the whole store with a cursor.
//
// Approvers: user:EMAIL matches only an e-mail the issuer vouches for, and
// a delegated token (an act claim) does not vote unless
// Options.AllowDelegatedVotes, and never for the party it acts for.
//
// Hold: with approvals.hold > 0, Gate waits up to hold for a decision,
// woken by the store's decision feed (Redis pub/sub across replicas), so a
// quick approver lets the waiting request through without a retry. Envoy
// must wait at least as long: set the ext_authz filter's grpc_service
// timeout above hold (e.g. hold 20s -> timeout 25s), and the route or
// stream timeouts of the agent's listener above that; otherwise Envoy gives
// up first and, with failure_mode_allow false, answers 403 before the hold
// ends.
package approvals

import (
	"cmp"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by the Service, matched with errors.Is.
var (
	// ErrUnavailable: the store failed or timed out; the request must be refused (503).
	ErrUnavailable = errors.New("approval store unavailable")
	// ErrNotFound: no approval has this id (it may have expired long ago).
	ErrNotFound = errors.New("approval not found")
	// ErrExpired: the approval is no longer pending; its TTL ended.
	ErrExpired = errors.New("approval expired")
	// ErrNotApprover: the voter is not in the rule's approvers.
	ErrNotApprover = errors.New("not an approver for this request")
	// ErrSelfApproval: the voter is the requester.
	ErrSelfApproval = errors.New("the requester cannot vote on their own request")
	// ErrDelegated: the voter's token acts for another party (an RFC 8693
	// act claim); approving is a human act.
	ErrDelegated = errors.New("approving is a human act: a delegated token (one with an act claim, acting for another party) cannot vote; vote with your own token")
	// ErrDecided: the approval was already approved or denied, or the voter already voted.
	ErrDecided = errors.New("approval already decided")
	// ErrInvalid: malformed input (id, reason, request).
	ErrInvalid = errors.New("invalid input")
	// ErrConflict: a Store.Update lost a race with another writer; re-read and retry.
	ErrConflict = errors.New("approval changed concurrently")
)

// Grant kinds: what an approval admits.
const (
	// GrantOnce admits exactly one request with the approved fingerprint.
	GrantOnce = "once"
	// GrantWindow admits every request with the approved fingerprint until the TTL ends.
	GrantWindow = "window"
)

// MaxReasonLen bounds the reason of a vote, in bytes.
const MaxReasonLen = 1024

// MaxFieldLen bounds every request string stored with an approval that the
// agent controls (URL, resource, ...), in bytes; a longer value is cut and
// marked with "...".
const MaxFieldLen = 2048

// MaxBodyLen bounds the masked body excerpt stored with an approval, in
// bytes: enough for the whole IAM policy of a setIamPolicy, so that an
// approver sees every binding it sets.
const MaxBodyLen = 32 << 10

// Request is the request that needs approval, as the gate saw it.
type Request struct {
	// Fingerprint keys the approval: a lower-case hex SHA-256 of what the
	// grant binds (authz.Binding).
	Fingerprint string
	// Issuer, Subject, Email and Actor identify the requester.
	Issuer, Subject, Email, Actor string
	// Operation is the GCP method id and Resource the full resource path.
	Operation, Resource string
	// Method is the effective method and URL is https://host/path?query.
	Method, URL string
	// BodyExcerpt is the masked, truncated request body.
	BodyExcerpt string
	// Justification is why the requester asks, when it asked ahead of the
	// request (masked, truncated).
	Justification string
	// Policy and Rule name the rule that asked for approval.
	Policy, Rule string
	// Message is the rule's message: why it asks for approval.
	Message string
	// Approvers are group:NAME or user:EMAIL entries.
	Approvers []string
	// MinApprovals is the number of distinct approvers needed (at least 1).
	MinApprovals int
	// Grant is GrantOnce or GrantWindow.
	Grant string
	// TTL is how long a pending approval, a denial and a grant live.
	TTL time.Duration
	// SessionID and RequestID tie the approval to the recording.
	SessionID, RequestID string
}

// State is the state of an approval.
type State string

// The states of an approval.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateExpired  State = "expired"
)

// Vote is one approver's decision.
type Vote struct {
	// Approver is the voter's OIDC subject and Email their e-mail.
	Approver, Email string
	// Approve is true for an approval, false for a denial.
	Approve bool
	// Reason is what the voter wrote.
	Reason string
	// At is when the vote was cast.
	At time.Time
}

// Approval is one request awaiting (or having received) a decision.
type Approval struct {
	// ID is the unguessable approval_id.
	ID string
	// State is the stored state; see Effective for the state at a given time.
	State State
	// Request is what was asked.
	Request Request
	// Votes are every vote cast, in order.
	Votes []Vote
	// CreatedAt is when the request first arrived.
	CreatedAt time.Time
	// ExpiresAt is when the current state ends: the pending request, the
	// denial or the grant.
	ExpiresAt time.Time
	// DecidedAt is when it was approved or denied.
	DecidedAt time.Time
	// GrantExpiresAt is when an approved grant ends.
	GrantExpiresAt time.Time
	// ClaimedAt is when the grant was first used.
	ClaimedAt time.Time
	// Uses counts the requests the grant admitted.
	Uses int
	// Version is the store's optimistic-concurrency counter.
	Version int64
}

// Effective is the state at now: a pending approval, a denial or a grant
// past its expiry is expired. (A claimed once grant stays approved, with
// ClaimedAt set.)
func (a Approval) Effective(now time.Time) State {
	switch a.State {
	case StatePending, StateDenied:
		if !now.Before(a.ExpiresAt) {
			return StateExpired
		}
	case StateApproved:
		if !now.Before(a.GrantExpiresAt) {
			return StateExpired
		}
	}
	return a.State
}

// DenialReason is the reason of the vote that denied the approval, or "".
func (a Approval) DenialReason() string {
	for _, v := range a.Votes {
		if !v.Approve {
			return v.Reason
		}
	}
	return ""
}

// Denier is the e-mail (or subject) of the approver who denied, or "".
func (a Approval) Denier() string {
	for _, v := range a.Votes {
		if !v.Approve {
			return cmp.Or(v.Email, v.Approver)
		}
	}
	return ""
}

// Requester is the requester's e-mail, or subject when there is none.
func (r Request) Requester() string { return cmp.Or(r.Email, r.Subject) }

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

var idEncoding = base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)

// idLen is the length of an id: 128 random bits in base32.
const idLen = 26

// NewID returns a fresh unguessable approval id (128 random bits, base32).
func NewID() string {
	var b [16]byte
	// Since Go 1.24 crypto/rand.Read never returns an error.
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the exact form NewID produces.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	// 128 bits fill 26 characters with 2 bits to spare: the last character
	// carries 3 bits and its 2 low bits are zero.
	return strings.IndexByte(idAlphabet, id[idLen-1])%4 == 0
}

// validFingerprint reports whether fp is a hex SHA-256.
func validFingerprint(fp string) bool {
	if len(fp) != 64 {
		return false
	}
	_, err := hex.DecodeString(fp)
	return err == nil && strings.ToLower(fp) == fp
}

// requesterJSON is the requester as the API shows it.
type requesterJSON struct {
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject"`
	Email   string `json:"email,omitempty"`
}

type voteJSON struct {
	Approver string    `json:"approver"`
	Email    string    `json:"email,omitempty"`
	Approve  bool      `json:"approve"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

type approvalJSON struct {
	ID             string        `json:"id"`
	State          State         `json:"state"`
	Requester      string        `json:"requester"`
	RequesterFull  requesterJSON `json:"requester_identity"`
	Actor          string        `json:"actor,omitempty"`
	Operation      string        `json:"operation"`
	Resource       string        `json:"resource,omitempty"`
	Method         string        `json:"method"`
	URL            string        `json:"url"`
	BodyExcerpt    string        `json:"body_excerpt,omitempty"`
	Justification  string        `json:"justification,omitempty"`
	Policy         string        `json:"policy,omitempty"`
	Rule           string        `json:"rule"`
	Message        string        `json:"message,omitempty"`
	Approvers      []string      `json:"approvers"`
	MinApprovals   int           `json:"min_approvals"`
	Grant          string        `json:"grant"`
	TTL            string        `json:"ttl"`
	SessionID      string        `json:"session_id,omitempty"`
	RequestID      string        `json:"request_id,omitempty"`
	Fingerprint    string        `json:"fingerprint"`
	Votes          []voteJSON    `json:"votes"`
	CreatedAt      time.Time     `json:"created_at"`
	ExpiresAt      time.Time     `json:"expires_at"`
	DecidedAt      *time.Time    `json:"decided_at,omitempty"`
	GrantExpiresAt *time.Time    `json:"grant_expires_at,omitempty"`
	ClaimedAt      *time.Time    `json:"claimed_at,omitempty"`
	Uses           int           `json:"uses"`
	Version        int64         `json:"version"`
	// Viewer is set by the API: what the caller may do with it.
	Viewer *Viewer `json:"viewer,omitempty"`
}

// Viewer is what one caller may do with an approval, by the rules Vote
// applies.
type Viewer struct {
	// CanVote: a vote by the caller would be accepted now.
	CanVote bool `json:"can_vote"`
	// IsRequester: the caller asked (or their agent did).
	IsRequester bool `json:"is_requester"`
	// Voted: the caller already voted.
	Voted bool `json:"voted"`
	// WhyNot says why CanVote is false.
	WhyNot string `json:"why_not,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// MarshalJSON writes the approval in the API's shape: id, state, requester,
// actor, operation, method, url, rule, votes, expires_at and more.
func (a Approval) MarshalJSON() ([]byte, error) { return a.marshalFor(nil) }

// marshalFor writes the approval with what viewer may do with it.
func (a Approval) marshalFor(viewer *Viewer) ([]byte, error) {
	r := a.Request
	j := approvalJSON{
		ID: a.ID, State: a.State,
		Requester:     r.Requester(),
		RequesterFull: requesterJSON{Issuer: r.Issuer, Subject: r.Subject, Email: r.Email},
		Actor:         r.Actor, Operation: r.Operation, Resource: r.Resource,
		Method: r.Method, URL: r.URL, BodyExcerpt: r.BodyExcerpt, Justification: r.Justification,
		Policy: r.Policy, Rule: r.Rule, Message: r.Message, Approvers: r.Approvers, Viewer: viewer,
		MinApprovals: r.MinApprovals, Grant: r.Grant, TTL: r.TTL.String(),
		SessionID: r.SessionID, RequestID: r.RequestID, Fingerprint: r.Fingerprint,
		Votes:     make([]voteJSON, 0, len(a.Votes)),
		CreatedAt: a.CreatedAt.UTC(), ExpiresAt: a.ExpiresAt.UTC(),
		DecidedAt: timePtr(a.DecidedAt), GrantExpiresAt: timePtr(a.GrantExpiresAt),
		ClaimedAt: timePtr(a.ClaimedAt), Uses: a.Uses, Version: a.Version,
	}
	if j.Approvers == nil {
		j.Approvers = []string{}
	}
	for _, v := range a.Votes {
		d := "deny"
		if v.Approve {
			d = "approve"
		}
		j.Votes = append(j.Votes, voteJSON{Approver: v.Approver, Email: v.Email, Approve: v.Approve, Decision: d, Reason: v.Reason, At: v.At.UTC()})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (a *Approval) UnmarshalJSON(b []byte) error {
	var j approvalJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var ttl time.Duration
	if j.TTL != "" {
		d, err := time.ParseDuration(j.TTL)
		if err != nil {
			return fmt.Errorf("approvals: ttl %q: %w", j.TTL, err)
		}
		ttl = d
	}
	*a = Approval{
		ID: j.ID, State: j.State,
		Request: Request{
			Fingerprint: j.Fingerprint, Issuer: j.RequesterFull.Issuer, Subject: j.RequesterFull.Subject, Email: j.RequesterFull.Email,
			Actor: j.Actor, Operation: j.Operation, Resource: j.Resource, Method: j.Method, URL: j.URL,
			BodyExcerpt: j.BodyExcerpt, Justification: j.Justification, Policy: j.Policy, Rule: j.Rule, Message: j.Message, Approvers: j.Approvers,
			MinApprovals: j.MinApprovals, Grant: j.Grant, TTL: ttl, SessionID: j.SessionID, RequestID: j.RequestID,
		},
		CreatedAt: j.CreatedAt, ExpiresAt: j.ExpiresAt, DecidedAt: timeVal(j.DecidedAt),
		GrantExpiresAt: timeVal(j.GrantExpiresAt), ClaimedAt: timeVal(j.ClaimedAt), Uses: j.Uses, Version: j.Version,
	}
	for _, v := range j.Votes {
		a.Votes = append(a.Votes, Vote{Approver: v.Approver, Email: v.Email, Approve: v.Approve, Reason: v.Reason, At: v.At})
	}
	return nil
}
