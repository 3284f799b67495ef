package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"mime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/mcp"
)

// FingerprintVersion names the canonical form a grant is keyed by. A change
// to what the fingerprint binds, or how, takes a new version, so that a key
// of one version never equals a key of another.
const FingerprintVersion = 2

// A grant binds the meaning of a request, not its bytes: the fingerprint
// that keys an approval is the SHA-256 of a length-prefixed encoding of
//
//   - the requester: token issuer and subject;
//   - the policy and rule that asked for approval;
//   - the recognised operation (Discovery method id) and resource;
//   - the effective method, host and normalised path;
//   - the query, keys sorted, each key's values in the order sent, without
//     access_token (ext_authz strips it before the request goes upstream);
//   - every header except those in unboundHeaders (names lower case, values
//     trimmed): an allow-list of headers that cannot change what Google
//     does, so that a header Google starts to honour next year binds by
//     default;
//   - the body in canonical form: a JSON API message (Content-Type JSON, not
//     a media upload) re-encoded so that member order and whitespace do not
//     matter while number text and string content do; any other body by its
//     bytes;
//   - for a batch, its parsed parts (each part's operation, method, host,
//     path, query, headers and body, in the same forms), never the raw
//     multipart bytes, and the batch Content-Type without its boundary.
//
// Some requests cannot be bound and are refused instead (fail closed): a
// body Envoy cut short or did not send, a JSON body with a member name given
// twice (Google and the policies could read different values), or one
// nested beyond maxJSONDepth.

// unboundHeaders are the headers a grant does not bind: they cannot change
// what Google does with the request.
var unboundHeaders = map[string]bool{
	// The agent's own credentials (Envoy injects the Google one).
	"authorization": true, "proxy-authorization": true, "cookie": true,
	// Correlation and tracing.
	handoff.RequestIDHeader: true, "traceparent": true, "tracestate": true,
	"x-cloud-trace-context": true, "grpc-trace-bin": true, "b3": true,
	// Client identification and transfer encoding of the response.
	"user-agent": true, "accept-encoding": true, "x-goog-api-client": true,
	// Framing: the body itself is bound.
	"content-length": true, "transfer-encoding": true,
	// Hop-by-hop and proxy-added.
	"connection": true, "te": true, "keep-alive": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-proto": true,
	// airlock's own session header.
	handoff.SessionHeader: true,
}

// unboundPrefixes extend unboundHeaders to header families.
var unboundPrefixes = []string{"x-b3-", "x-envoy-"}

// boundHeader reports whether a header takes part in the fingerprint.
// Pseudo-headers are bound through the method, host and path.
func boundHeader(name string) bool {
	if strings.HasPrefix(name, ":") || unboundHeaders[name] {
		return false
	}
	for _, p := range unboundPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// maxJSONBytes bounds a JSON body canonicalised for a fingerprint.
const maxJSONBytes = 16 << 20

// maxJSONDepth bounds the nesting of a JSON body canonicalised for a fingerprint.
const maxJSONDepth = 128

// Binding is what an approval grant is bound to.
type Binding struct {
	// Issuer and Subject identify the requester.
	Issuer, Subject string
	// Policy and Rule name the rule that asked for approval.
	Policy, Rule string
	// Request is the recognised request (with its parts for a batch).
	Request gcp.Recognized
	// Headers are the request's headers as Envoy sent them (lower-case
	// names, pseudo-headers included).
	Headers map[string]string
	// Body is the request body Envoy sent.
	Body []byte
	// BodyPartial is true when Envoy cut the body.
	BodyPartial bool
	// MCP, for a request to an MCP endpoint, binds its canonical calls
	// instead of the body (see bindMCP).
	MCP *mcp.Request
}

// UnbindableError says why a request cannot be bound to an approval. Msg
// is written for the agent.
type UnbindableError struct{ Msg string }

func (e *UnbindableError) Error() string { return "authz: cannot bind an approval: " + e.Msg }

func unbindable(format string, args ...any) *UnbindableError {
	return &UnbindableError{Msg: fmt.Sprintf(format, args...)}
}

// Fingerprint returns the lower-case hex SHA-256 that keys the approval of
// the bound request, or an *UnbindableError.
func (b Binding) Fingerprint() (string, error) {
	if b.BodyPartial {
		return "", unbindable("the request body is larger than the gateway inspects (%d bytes seen), so an approval cannot be bound to what it does; send a smaller body", len(b.Body))
	}
	if err := checkLength(b.Headers, b.Body); err != nil {
		return "", err
	}
	f := fingerprinters.Get().(*fingerprinter)
	defer f.release()
	f.h.Reset()
	f.str("airlock-approval")
	f.num(FingerprintVersion)
	f.str(b.Issuer)
	f.str(b.Subject)
	f.str(b.Policy)
	f.str(b.Rule)
	if b.MCP != nil {
		if err := f.mcpRequest(b.MCP, b.Headers, b.Body); err != nil {
			return "", err
		}
		return hex.EncodeToString(f.h.Sum(nil)), nil
	}
	if err := f.request(b.Request, b.Headers, b.Body, true); err != nil {
		return "", err
	}
	return hex.EncodeToString(f.h.Sum(nil)), nil
}

// checkLength refuses a body whose content-length says more (or less) was
// sent than the gateway saw: Envoy was not configured to send it whole.
func checkLength(headers map[string]string, body []byte) error {
	cl, ok := headers["content-length"]
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(cl), 10, 63)
	if err != nil {
		return unbindable("the content-length %q is not a number", clipValue(cl, 40))
	}
	if n != uint64(len(body)) {
		return unbindable("the gateway saw %d of the body's %d bytes, so an approval cannot be bound to what it does", len(body), n)
	}
	return nil
}

// fingerprinters keeps fingerprinters with their hashers and buffers.
var fingerprinters = sync.Pool{New: func() any { return &fingerprinter{h: sha256.New()} }}

// fingerprinter writes length-prefixed fields into a hash: no two
// different sequences of fields encode to the same bytes.
type fingerprinter struct {
	h       hash.Hash
	buf     [8]byte
	scratch []byte
	js      jsonCanon
}

// release returns f to the pool without the buffers a large body grew.
func (f *fingerprinter) release() {
	const keep = 64 << 10
	if cap(f.scratch) > keep {
		f.scratch = nil
	}
	if cap(f.js.str) > keep {
		f.js.str = nil
	}
	for i := range f.js.keys {
		if cap(f.js.keys[i]) > keep {
			f.js.keys[i] = nil
		}
		if cap(f.js.mem[i]) > keep/64 {
			f.js.mem[i] = nil
		}
	}
	fingerprinters.Put(f)
}

func (f *fingerprinter) num(n int) {
	binary.BigEndian.PutUint64(f.buf[:], uint64(n))
	f.h.Write(f.buf[:])
}

func (f *fingerprinter) str(s string) {
	f.num(len(s))
	f.scratch = append(f.scratch[:0], s...)
	f.h.Write(f.scratch)
}

func (f *fingerprinter) raw(b []byte) {
	f.num(len(b))
	f.h.Write(b)
}

// request writes one request, or one part of a batch.
func (f *fingerprinter) request(r gcp.Recognized, headers map[string]string, body []byte, top bool) error {
	f.str(r.Operation.Method)
	f.str(r.Operation.Resource)
	f.str(r.Method)
	f.str(r.Host)
	f.str(r.Path)
	f.query(r.Query, top)
	batch := r.Parts != nil
	f.headers(headers, batch)
	if batch {
		f.str("batch")
		f.num(len(r.Parts))
		for i, p := range r.Parts {
			pb, err := partBody(p.Headers, p.Body)
			if err == nil {
				err = f.request(p, p.Headers, pb, false)
			}
			var ue *UnbindableError
			if errors.As(err, &ue) {
				return unbindable("batch part %d: %s", i+1, ue.Msg)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return f.body(r, headers, body)
}

// partBody is a batch part's body as Google reads it: a content-length
// shorter than the part leaves only line ends out.
func partBody(headers map[string]string, body []byte) ([]byte, error) {
	cl, ok := headers["content-length"]
	if !ok {
		return body, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(cl), 10, 63)
	if err != nil {
		return nil, unbindable("the content-length %q is not a number", clipValue(cl, 40))
	}
	if n > uint64(len(body)) || strings.Trim(string(body[n:]), "\r\n") != "" {
		return nil, unbindable("its content-length (%d) does not match its body (%d bytes)", n, len(body))
	}
	return body[:n], nil
}

func (f *fingerprinter) query(q map[string][]string, top bool) {
	keys := make([]string, 0, len(q))
	for k := range q {
		if top && k == "access_token" {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	f.num(len(keys))
	for _, k := range keys {
		f.str(k)
		f.num(len(q[k]))
		for _, v := range q[k] {
			f.str(v)
		}
	}
}

func (f *fingerprinter) headers(h map[string]string, batch bool) {
	names := make([]string, 0, len(h))
	for k := range h {
		if boundHeader(strings.ToLower(k)) {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	f.num(len(names))
	for _, k := range names {
		v := strings.Trim(h[k], " \t")
		lk := strings.ToLower(k)
		if batch && lk == "content-type" {
			v = withoutBoundary(v)
		}
		f.str(lk)
		f.str(v)
	}
}

// withoutBoundary drops the boundary of a batch's Content-Type: the parts
// it delimits are bound one by one.
func withoutBoundary(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	delete(params, "boundary")
	return mime.FormatMediaType(mt, params)
}

// body writes a request body: a JSON API message in canonical form, any
// other body by its bytes.
func (f *fingerprinter) body(r gcp.Recognized, headers map[string]string, body []byte) error {
	if len(body) == 0 {
		f.str("empty")
		return nil
	}
	if jsonMessage(r, headers) {
		if len(body) > maxJSONBytes {
			return unbindable("the JSON body is larger than %d bytes", maxJSONBytes)
		}
		ok, err := f.js.canonical(f.h, body)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// Not valid JSON: Google refuses it; bind it by its bytes.
	}
	f.str("bytes")
	f.raw(body)
	return nil
}

// jsonMessage reports whether a body is a JSON API message, whose member
// order and whitespace carry no meaning: a JSON Content-Type (or $ct), and
// not a media upload, whose bytes are the data stored.
func jsonMessage(r gcp.Recognized, headers map[string]string) bool {
	ct := headers["content-type"]
	if v := r.Query["$ct"]; len(v) > 0 {
		ct = v[0]
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
	if first == "upload" || first == "resumable" {
		return false
	}
	// Cloud Storage's XML API (every storage path outside /storage/ and
	// /batch/) carries object data.
	if r.Operation.Service == "storage" && first != "storage" && first != "batch" {
		return false
	}
	return true
}

func clipValue(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
