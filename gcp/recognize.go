package gcp

import (
	"fmt"
	"strings"
)

// Request is the HTTP request as Envoy's ext_authz sent it.
type Request struct {
	Method      string            // :method as sent
	Host        string            // :authority/host as sent (any case, maybe port, maybe trailing dot)
	Path        string            // :path as sent, including the query string
	Headers     map[string]string // lower-case names (x-http-method-override, content-type...)
	Body        []byte            // request body as Envoy sent it, possibly truncated
	BodyPartial bool              // true when Envoy said x-envoy-auth-partial-body: true
	// MaxBodyBytes, when positive, is the largest body parsed for policies;
	// a longer one is unreadable (see BodyUnreadable).
	MaxBodyBytes int
}

// Recognized is the request normalised as Google's front end reads it.
type Recognized struct {
	Method    string              // effective method: X-HTTP-Method-Override applied, upper case
	Host      string              // lower case, port and trailing dot removed, gateway domain mapped back to *.googleapis.com
	Path      string              // normalised path without query
	Query     map[string][]string // decoded query parameters
	Operation Operation           // zero Method when unknown: a normal outcome
	Parts     []Recognized        // non-nil only for batch requests: one per part
	Headers   map[string]string   // batch parts only: the part's own headers, lower-case names
	Body      []byte              // batch parts only: the part's own body
	// Unrecognized says, for the agent, why no operation was recognised
	// (an unknown host, a method the host's API does not have, a gRPC
	// call, a batch part that is one of those) and what to send instead.
	// It is empty when the operation, or every part of a batch, is known.
	Unrecognized string
	// BodyJSON is the request body as Google reads it (JSON values as
	// encoding/json decodes them into an any); nil when there is no body.
	// A batch request has none: each part carries its own.
	BodyJSON any
	// BodyUnreadable, when set, says why a body that exists cannot be read
	// as Google would (cut, too long, not JSON...): policies must then fail
	// closed on every use of the body.
	BodyUnreadable string
}

// UnrecognizedError returns Unrecognized as a *RequestError, nil when the
// operation was recognised.
func (r Recognized) UnrecognizedError() error {
	if r.Unrecognized == "" {
		return nil
	}
	return &RequestError{Msg: r.Unrecognized}
}

// RequestError is a refusal before policy (ambiguous path, unparseable
// batch...). Msg is written for the agent.
type RequestError struct{ Msg string }

// Error returns the refusal text.
func (e *RequestError) Error() string { return "gcp: " + e.Msg }

func refusef(format string, args ...any) *RequestError {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// Recognizer normalises requests and finds their operation in a catalog.
// It is immutable and safe for concurrent use.
type Recognizer struct {
	catalog *Catalog
	domains []string // ".airlock.example.com"
}

// NewRecognizer returns a recognizer over c. gatewayDomains are the
// endpoint-override domains (config gateway.domains): with
// "airlock.example.com", host "compute.airlock.example.com" is read as
// "compute.googleapis.com".
func NewRecognizer(c *Catalog, gatewayDomains []string) *Recognizer {
	r := &Recognizer{catalog: c}
	for _, d := range gatewayDomains {
		d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
		if d != "" {
			r.domains = append(r.domains, "."+d)
		}
	}
	// Longest first, so that a sub-domain of another gateway domain wins.
	for i := 1; i < len(r.domains); i++ {
		for j := i; j > 0 && len(r.domains[j]) > len(r.domains[j-1]); j-- {
			r.domains[j], r.domains[j-1] = r.domains[j-1], r.domains[j]
		}
	}
	return r
}

// Method override: the X-HTTP-Method-Override header and its system
// parameter $httpMethod name the method Google acts on. Google honours them
// on POST only; on any other method an override that names a different
// method is refused, since the gateway and Google could read it differently.
const (
	overrideHeader = "x-http-method-override"
	overrideParam  = "$httpMethod"
	ctParam        = "$ct" // system parameter overriding Content-Type
)

// Recognize normalises req and finds its operation. An unknown host or
// operation is a normal outcome (zero Operation.Method); the error, always a
// *RequestError, refuses a request that cannot be read unambiguously.
func (r *Recognizer) Recognize(req Request) (Recognized, error) {
	return r.recognize(req, false)
}

func (r *Recognizer) recognize(req Request, inBatch bool) (Recognized, error) {
	out, err := r.recognizeOnce(req, inBatch)
	if err != nil || out.Parts != nil {
		return out, err
	}
	if err := r.checkEncodedDelimiters(req, out); err != nil {
		return out, err
	}
	out.BodyJSON, out.BodyUnreadable, err = readBody(out.Path, effectiveContentType(req.Headers, out.Query), req.Body, req.BodyPartial, req.MaxBodyBytes)
	if err != nil || out.BodyJSON == nil {
		return out, err
	}
	out.BodyJSON, err = normalizeBody(out.Operation, out.BodyJSON)
	return out, err
}

// effectiveContentType is the Content-Type Google reads: the $ct system
// parameter when present, else the header.
func effectiveContentType(headers map[string]string, query map[string][]string) string {
	if ct := query[ctParam]; len(ct) > 0 {
		return ct[0]
	}
	return headers["content-type"]
}

// encodedDelimiters are escapes that, decoded, would change how a path is
// routed: a segment separator and the custom-verb separator.
var encodedDelimiters = strings.NewReplacer("%2F", "/", "%3A", ":")

// checkEncodedDelimiters refuses a path whose %2F or %3A, if a front end
// decoded it, would name another operation: the gateway and Google must
// never disagree on what a request does. A Cloud Storage object name is the
// one place such escapes belong (they stay inside the object parameter).
func (r *Recognizer) checkEncodedDelimiters(req Request, out Recognized) error {
	if !strings.Contains(out.Path, "%2F") && !strings.Contains(out.Path, "%3A") {
		return nil
	}
	if out.Operation.Service == "storage" && out.Operation.Params["object"] != "" {
		return nil
	}
	alt := req
	_, rawQuery, hasQuery := strings.Cut(req.Path, "?")
	alt.Path = encodedDelimiters.Replace(out.Path)
	if hasQuery {
		alt.Path += "?" + rawQuery
	}
	decoded, err := r.recognizeOnce(alt, true)
	if err != nil || decoded.Operation.Method != out.Operation.Method || decoded.Method != out.Method {
		return refusef("the path %q encodes '/' or ':' (%%2F, %%3A) where decoding it would name a different operation; send the path without those escapes", clip(out.Path))
	}
	return nil
}

func (r *Recognizer) recognizeOnce(req Request, inBatch bool) (Recognized, error) {
	var out Recognized
	host, err := r.normalizeHost(req.Host)
	if err != nil {
		return out, err
	}
	out.Host = host
	method := strings.ToUpper(req.Method)
	if !isToken(method) {
		return out, refusef("the request method %q is not a valid HTTP method", clip(req.Method))
	}
	rawPath, rawQuery, _ := strings.Cut(req.Path, "?")
	if out.Path, err = NormalizePath(rawPath); err != nil {
		return out, err
	}
	if out.Query, err = ParseQuery(rawQuery); err != nil {
		return out, err
	}
	if err := checkQuery(out.Query, rawQuery); err != nil {
		return out, err
	}
	if out.Method, err = effectiveMethod(method, req.Headers[overrideHeader], out.Query); err != nil {
		return out, err
	}
	contentType := effectiveContentType(req.Headers, out.Query)
	if err := r.identify(&out, contentType, req, inBatch); err != nil {
		return out, err
	}
	if err := checkSlice(out); err != nil {
		return out, err
	}
	return out, nil
}

// identify finds the operation of a normalised request: a catalog method,
// a gRPC call, a discovery document, a batch, a Cloud Storage XML request,
// or an unknown operation with the reason in Unrecognized.
func (r *Recognizer) identify(out *Recognized, contentType string, req Request, inBatch bool) error {
	host := out.Host
	op, e := r.catalog.lookup(host, out.Method, out.Path)
	if e == nil {
		if _, ok := out.Query["upload_id"]; ok && isUploadPath(out.Path) && (out.Method == "PUT" || out.Method == "POST") {
			// Resumable upload chunks go to the upload URL with PUT (or
			// POST): they continue the method that opened the session.
			for _, m := range []string{"POST", "PUT", "PATCH"} {
				if op, e = r.catalog.lookup(host, m, out.Path); e != nil {
					break
				}
			}
		}
	}
	if e != nil {
		if err := checkResource(op.Resource); err != nil {
			return err
		}
		if op.Project == "" && e.projectQ != "" {
			if v := out.Query[e.projectQ]; len(v) > 0 {
				op.Project = v[0]
			}
		}
		out.Operation = op
		return nil
	}
	if isGRPC(contentType, out.Path) || firstSegment(out.Path) == "$rpc" {
		// gRPC calls (/google.pubsub.v1.Publisher/Publish), and their
		// HTTP fallback (/$rpc/google.pubsub.v1.Publisher/Publish), have
		// no Discovery method: an unknown operation of the host's service.
		call := strings.TrimPrefix(out.Path, "/$rpc")
		out.Operation = Operation{Service: r.serviceOf(host), Version: grpcVersion(call)}
		out.Unrecognized = grpcRefusal(call)
		return nil
	}
	if op, ok := r.discovery(host, out.Method, out.Path, out.Query); ok {
		if err := checkResource(op.Resource); err != nil {
			return err
		}
		out.Operation = op
		return nil
	}
	if firstSegment(out.Path) == "batch" {
		if inBatch {
			return refusef("a batch request may not contain another batch request (%s)", out.Path)
		}
		parts, err := r.batch(host, contentType, req)
		if err != nil {
			return err
		}
		out.Parts = parts
		out.Operation = Operation{Service: r.serviceOf(host)}
		for i, p := range parts {
			if p.Unrecognized != "" {
				out.Unrecognized = fmt.Sprintf("batch part %d: %s", i+1, p.Unrecognized)
				break
			}
		}
		return nil
	}
	op, ok, err := r.storageXML(host, out.Method, out.Path, out.Query, req.Headers)
	if err != nil {
		return err
	}
	if ok {
		if err := checkResource(op.Resource); err != nil {
			return err
		}
		out.Operation = op
		if op.Method == "" {
			out.Unrecognized = fmt.Sprintf("airlock maps the Cloud Storage XML API at %s to the methods of the JSON API (storage v1), but %s %s is none of them; use a documented XML API request, or the JSON API at https://storage.googleapis.com/storage/v1/", host, out.Method, clip(out.Path))
		}
		return nil
	}
	out.Operation = Operation{Service: r.serviceOf(host)}
	out.Unrecognized = r.whyUnknown(host, out.Method, out.Path)
	return nil
}

// whyUnknown explains an unknown operation at host to the agent.
func (r *Recognizer) whyUnknown(host, method, path string) string {
	apis := r.catalog.apisAt(host)
	if len(apis) == 0 {
		if !strings.HasSuffix(host, ".googleapis.com") {
			return fmt.Sprintf("%q is not a Google Cloud API host: airlock governs requests to Google's APIs (*.googleapis.com) only", clip(host))
		}
		return fmt.Sprintf("airlock does not know an API served at %s (it knows the generally available APIs of Google's Discovery documents), so it cannot check this request against policy; send it to the API's documented endpoint, SERVICE.googleapis.com, or its mTLS, regional or Private Service Connect form", clip(host))
	}
	known := describeAPIs(apis)
	return fmt.Sprintf("airlock knows %s at %s, but %s %s is none of its methods; use a documented REST method of that API (pre-GA versions such as v1beta are not recognised)", known, host, method, clip(path))
}

// describeAPIs names API versions ("compute v1") in words: "compute v1
// and preview", or a count for a host that serves many APIs.
func describeAPIs(apis []string) string {
	var names []string
	versions := map[string][]string{}
	for _, a := range apis {
		name, version, _ := strings.Cut(a, " ")
		if _, ok := versions[name]; !ok {
			names = append(names, name)
		}
		versions[name] = append(versions[name], version)
	}
	if len(names) > 3 {
		return fmt.Sprintf("%d APIs below their service paths (%s, %s, %s, ...)", len(names), names[0], names[1], names[2])
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + andList(versions[n])
	}
	return andList(parts)
}

// andList joins words as "a", "a and b", "a, b and c".
func andList(w []string) string {
	if len(w) <= 1 {
		return strings.Join(w, "")
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

// grpcRefusal tells the agent to switch its client from gRPC to REST.
func grpcRefusal(call string) string {
	return fmt.Sprintf("gRPC calls (%s) cannot be checked against policy: airlock reads Google's APIs in their REST form. "+
		"Switch the client to REST: gcloud speaks REST (for Cloud Storage keep storage/preferred_api at json and storage/use_grpc_if_available false); "+
		"Go: the NewRESTClient constructors of cloud.google.com/go (e.g. secretmanager.NewRESTClient); "+
		"Python: transport=\"rest\"; Java: the service settings' newHttpJsonBuilder() (HttpJsonTransportProvider)", clip(call))
}

// discovery recognises the discovery document a client library fetches
// from a service host, GET /$discovery/rest?version=V, as the read-only
// discovery.apis.getRest of that service (www.googleapis.com/discovery/v1/
// apis/API/V/rest is in the catalog).
func (r *Recognizer) discovery(host, method, path string, query map[string][]string) (Operation, bool) {
	if path != "/$discovery/rest" || (method != "GET" && method != "HEAD") {
		return Operation{}, false
	}
	svc, known := r.catalog.Service(host)
	if !known || svc == "" {
		return Operation{}, false
	}
	op, ok := r.catalog.byID("discovery.apis.getRest")
	if !ok {
		return Operation{}, false
	}
	version := ""
	if v := query["version"]; len(v) > 0 {
		version = v[0]
	}
	op.Params = map[string]string{"api": svc, "version": version}
	op.Resource = "apis/" + svc
	if version != "" {
		op.Resource += "/" + version
	}
	return op, true
}

func effectiveMethod(method, header string, query map[string][]string) (string, error) {
	override := strings.ToUpper(strings.TrimSpace(header))
	if vals, ok := query[overrideParam]; ok {
		if len(vals) != 1 {
			return "", refusef("the %s parameter is given %d times; give it once", overrideParam, len(vals))
		}
		q := strings.ToUpper(strings.TrimSpace(vals[0]))
		if override != "" && q != override {
			return "", refusef("X-HTTP-Method-Override (%s) and %s (%s) disagree", override, overrideParam, q)
		}
		override = q
	}
	if override == "" {
		if header != "" {
			return "", refusef("X-HTTP-Method-Override is empty; remove it or name a method")
		}
		return method, nil
	}
	if !isToken(override) {
		return "", refusef("X-HTTP-Method-Override %q is not a single HTTP method", clip(override))
	}
	if method == "POST" {
		return override, nil
	}
	if override != method {
		return "", refusef("X-HTTP-Method-Override (%s) is honoured on POST only; send %s as the request method instead of %s", override, override, method)
	}
	return method, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// normalizeHost lower-cases host, drops the port and a trailing dot, and
// maps a gateway domain back to googleapis.com.
func (r *Recognizer) normalizeHost(h string) (string, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", refusef("the host %q is not valid", clip(h))
		}
		port := h[end+1:]
		if port != "" && (port[0] != ':' || !allDigits(port[1:])) {
			return "", refusef("the host %q is not valid", clip(h))
		}
		return h[:end+1], nil
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !allDigits(h[i+1:]) {
			return "", refusef("the host %q has an invalid port", clip(h))
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", refusef("the host %q has a character that is not allowed in a host name", clip(h))
		}
	}
	if strings.Contains(h, "..") || strings.HasPrefix(h, ".") {
		return "", refusef("the host %q has an empty label", clip(h))
	}
	for _, d := range r.domains {
		if labels, ok := strings.CutSuffix(h, d); ok && labels != "" {
			return labels + ".googleapis.com", nil
		}
	}
	return h, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// serviceOf names the API served at host: from the catalog, else the first
// label of a googleapis.com host (regional forms stripped), else "".
func (r *Recognizer) serviceOf(host string) string {
	if s, known := r.catalog.Service(host); known {
		return s
	}
	if _, ok := xmlBucket(host); ok {
		return "storage"
	}
	if canon := aliasOf(host); canon != "" {
		return strings.TrimSuffix(canon, ".googleapis.com")
	}
	if rest, ok := strings.CutSuffix(host, ".googleapis.com"); ok {
		rest, _, _ = strings.Cut(rest, ".")
		return rest
	}
	return ""
}

// isGRPC reports a gRPC call: a gRPC content type and a /package.Service/Method
// path. A REST path is read as REST whatever the content type says.
func isGRPC(contentType, path string) bool {
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/grpc") {
		return false
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return ok && strings.IndexByte(svc, '.') > 0 && method != "" && strings.IndexByte(method, '/') < 0
}

// grpcVersion reads the version of a gRPC path such as
// /google.pubsub.v1.Publisher/Publish.
func grpcVersion(path string) string {
	svc := firstSegment(path)
	parts := strings.Split(svc, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		if isVersion(parts[i]) {
			return parts[i]
		}
	}
	return ""
}

func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	s, _, _ := strings.Cut(p, "/")
	return s
}

func isUploadPath(p string) bool {
	f := firstSegment(p)
	return f == "upload" || f == "resumable"
}

// checkResource refuses a resource path whose decoded parameters hold a dot
// or empty segment (projects/p%2F..%2Fq, objects a%2F%2Fb): policies match
// on the resource path, which must not be open to two readings. A Cloud
// Storage object name may end in "/" (release%2F, the placeholder of a
// folder, which gcloud storage ls looks up): that one trailing empty
// segment reads one way only.
func checkResource(res string) error {
	if res == "" {
		return nil
	}
	segs := strings.Split(res, "/")
	if n := len(segs); n > 6 && segs[n-1] == "" && strings.HasPrefix(res, "projects/_/buckets/") && segs[4] == "objects" {
		segs = segs[:n-1]
	}
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return refusef("a path parameter decodes to a dot or empty segment (resource %q); encode names without them", clip(res))
		}
	}
	return nil
}
