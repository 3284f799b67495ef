// Package standin is the Envoy stand-in that drives airlock's end-to-end
// tests: it builds ext_authz CheckRequests and applies CheckResponses the way
// Envoy's ext_authz filter does, fetches the injected credential from
// airlock's SDS over the real xDS protocol, and forwards requests to a
// configurable upstream. Every behaviour mirrors the Envoy behaviour spec
// (ext_authz filter, credential injector, router) so that a test passing
// against the stand-in means the same against Envoy.
package standin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Envoy's names and defaults used by the ext_authz filter.
const (
	// AuthzNamespace is the dynamic metadata namespace ext_authz writes to.
	AuthzNamespace = "envoy.filters.http.ext_authz"
	// PartialBodyHeader tells the authorization server whether the body it
	// received was cut at max_request_bytes.
	PartialBodyHeader = "x-envoy-auth-partial-body"
	// DefaultAuthzTimeout is ext_authz's default gRPC timeout.
	DefaultAuthzTimeout = 200 * time.Millisecond
	// DefaultAuthzStatusOnError is ext_authz's default status_on_error.
	DefaultAuthzStatusOnError = http.StatusForbidden
)

// AuthzConfig mirrors the ext_authz filter settings the stand-in honours.
type AuthzConfig struct {
	// WithRequestBody buffers the request body and sends it in the check
	// (with_request_body).
	WithRequestBody bool
	// MaxRequestBytes is with_request_body.max_request_bytes; 0 means no limit.
	MaxRequestBytes uint32
	// AllowPartialMessage sends the first MaxRequestBytes of a larger body
	// instead of answering 413.
	AllowPartialMessage bool
	// PackAsBytes puts the body in raw_body instead of body.
	PackAsBytes bool
	// EncodeRawHeaders sends header_map (raw_value entries) instead of headers.
	EncodeRawHeaders bool
	// Timeout is the gRPC call timeout; 0 means Envoy's default, 200ms.
	Timeout time.Duration
	// StatusOnError is the status of the local reply on a transport error or
	// timeout; 0 means Envoy's default, 403.
	StatusOnError int
	// HonourAppendAction applies HeaderValueOption.append_action when append
	// is unset (Envoy main since PR 42878, 2026); false is the v1.36
	// behaviour, where an unset append means set.
	HonourAppendAction bool
	// Scheme overrides :scheme; empty means "https" on a TLS connection, the
	// URL's scheme for a client-style request (http.NewRequest), else "http".
	Scheme string
}

func (c AuthzConfig) withDefaults() AuthzConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultAuthzTimeout
	}
	if c.StatusOnError == 0 {
		c.StatusOnError = DefaultAuthzStatusOnError
	}
	return c
}

// bodyTooLarge reports whether Envoy would answer 413 without a check.
func (c AuthzConfig) bodyTooLarge(body []byte) bool {
	return c.WithRequestBody && !c.AllowPartialMessage && c.MaxRequestBytes > 0 &&
		uint64(len(body)) > uint64(c.MaxRequestBytes)
}

// header is one request header entry as Envoy's header map holds it:
// lower-case key, duplicates as separate entries, in order.
type header struct{ key, value string }

// requestHeaders is the ordered header map of one request, pseudo-headers
// first.
type requestHeaders []header

func (h requestHeaders) get(key string) (string, bool) {
	for _, e := range h {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

func (h requestHeaders) has(key string) bool { _, ok := h.get(key); return ok }

// set replaces every entry of key by one entry (Envoy setCopy).
func (h requestHeaders) set(key, value string) requestHeaders {
	for i, e := range h {
		if e.key == key {
			h[i].value = value
			return append(h[:i+1], h[i+1:].remove(key)...)
		}
	}
	return append(h, header{key, value})
}

// add appends a new entry (Envoy addCopy).
func (h requestHeaders) add(key, value string) requestHeaders {
	return append(h, header{key, value})
}

// appendValue comma-joins value to the first entry of key (Envoy appendCopy).
func (h requestHeaders) appendValue(key, value string) requestHeaders {
	for i, e := range h {
		if e.key == key {
			if e.value == "" {
				h[i].value = value
			} else {
				h[i].value = e.value + "," + value
			}
			return h
		}
	}
	return append(h, header{key, value})
}

func (h requestHeaders) remove(key string) requestHeaders {
	out := h[:0:0]
	for _, e := range h {
		if e.key != key {
			out = append(out, e)
		}
	}
	return out
}

// hopByHop are the connection-specific headers Envoy's HTTP connection
// manager strips before any filter runs.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"upgrade": true, "te": true,
}

// envoyHeaders builds the header map Envoy's filters see for r: :scheme,
// :method, :authority and :path, then the client headers (lower-case, hop-by-hop
// removed), then the x-forwarded-proto and x-request-id the connection manager
// adds when absent.
func envoyHeaders(r *http.Request, scheme string) requestHeaders {
	h := requestHeaders{
		{":scheme", scheme},
		{":method", r.Method},
		{":authority", r.Host},
		{":path", requestPath(r)},
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if hopByHop[lk] || lk == "host" {
			continue
		}
		for _, v := range r.Header[k] {
			h = h.add(lk, v)
		}
	}
	switch {
	case len(r.TransferEncoding) > 0 && !h.has("transfer-encoding"):
		h = h.add("transfer-encoding", strings.Join(r.TransferEncoding, ","))
	case r.ContentLength > 0 && !h.has("content-length"):
		// A client-style request (http.NewRequest) keeps its length out of
		// the header map; on the wire it is a content-length header.
		h = h.add("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	if !h.has("x-forwarded-proto") {
		h = h.add("x-forwarded-proto", scheme)
	}
	if !h.has("x-request-id") {
		h = h.add("x-request-id", newRequestID())
	}
	return h
}

// requestPath is :path as the client sent it, query included.
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

func schemeOf(r *http.Request, override string) string {
	if override != "" {
		return override
	}
	if r.TLS != nil {
		return "https"
	}
	if r.URL != nil && r.URL.Scheme != "" {
		return strings.ToLower(r.URL.Scheme) // a client-style request built with http.NewRequest
	}
	return "http"
}

func newRequestID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sanitizeUTF8 replaces every byte that is not part of a valid UTF-8
// sequence with '!', as Envoy's MessageUtil::sanitizeUtf8String does.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte('!')
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// protocolString is Envoy's name for the request's HTTP version.
func protocolString(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "HTTP/2"
	case r.ProtoMajor == 3:
		return "HTTP/3"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "HTTP/1.0"
	default:
		return "HTTP/1.1"
	}
}

func socketAddress(hostport string) *corev3.Address {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "0"
	}
	p, _ := strconv.ParseUint(port, 10, 32)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
	}}}
}

// certPrincipal is Envoy's peer principal: URI SAN, then DNS SAN, then subject.
func certPrincipal(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// CheckRequestFromHTTP builds the CheckRequest exactly as Envoy's ext_authz
// filter would for r with the given (already read) body: source and
// destination addresses and principals, request time, a stream id as http.id
// (not x-request-id), method, path with query, host, scheme, protocol, size,
// and the headers (pseudo-headers included, duplicates joined with ",",
// UTF-8 sanitised; or header_map with raw values under EncodeRawHeaders).
// With WithRequestBody and a non-empty body, the first MaxRequestBytes bytes
// go in body (sanitised) or raw_body (PackAsBytes), and a client's
// x-envoy-auth-partial-body is replaced by Envoy's own.
func CheckRequestFromHTTP(r *http.Request, body []byte, cfg AuthzConfig) *authv3.CheckRequest {
	return checkRequest(r, envoyHeaders(r, schemeOf(r, cfg.Scheme)), body, cfg, time.Now())
}

func checkRequest(r *http.Request, hdrs requestHeaders, body []byte, cfg AuthzConfig, start time.Time) *authv3.CheckRequest {
	hdrs = hdrs.remove(PartialBodyHeader)
	sent := body
	partial := false
	withBody := cfg.WithRequestBody && len(body) > 0
	if withBody && cfg.MaxRequestBytes > 0 && uint64(len(body)) > uint64(cfg.MaxRequestBytes) {
		sent = body[:cfg.MaxRequestBytes]
		partial = true
	}
	if withBody {
		hdrs = hdrs.add(PartialBodyHeader, strconv.FormatBool(partial))
	}
	var size int64
	if withBody {
		size = int64(len(sent))
	}

	path, _ := hdrs.get(":path")
	method, _ := hdrs.get(":method")
	host, _ := hdrs.get(":authority")
	scheme, _ := hdrs.get(":scheme")
	httpReq := &authv3.AttributeContext_HttpRequest{
		Id:       strconv.FormatUint(rand.Uint64(), 10),
		Method:   method,
		Path:     path,
		Host:     host,
		Scheme:   scheme,
		Size:     size,
		Protocol: protocolString(r),
	}
	if cfg.EncodeRawHeaders {
		hm := &corev3.HeaderMap{}
		for _, e := range hdrs {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
		}
		httpReq.HeaderMap = hm
	} else {
		m := make(map[string]string, len(hdrs))
		for _, e := range hdrs {
			v := sanitizeUTF8(e.value)
			if old, ok := m[e.key]; ok {
				m[e.key] = old + "," + v
			} else {
				m[e.key] = v
			}
		}
		httpReq.Headers = m
	}
	if withBody {
		if cfg.PackAsBytes {
			httpReq.RawBody = append([]byte(nil), sent...)
		} else {
			httpReq.Body = sanitizeUTF8(string(sent))
		}
	}

	remote := r.RemoteAddr
	if remote == "" {
		remote = "127.0.0.1:0" // a client-style request has no peer; Envoy always has one
	}
	source := &authv3.AttributeContext_Peer{Address: socketAddress(remote)}
	if v, ok := hdrs.get("x-envoy-downstream-service-cluster"); ok {
		source.Service = v
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		source.Principal = certPrincipal(r.TLS.PeerCertificates[0])
	}
	local := "127.0.0.1:0"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && a != nil {
		local = a.String()
	}
	destination := &authv3.AttributeContext_Peer{Address: socketAddress(local)}

	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      source,
		Destination: destination,
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(start),
			Http: httpReq,
		},
		// Envoy sets both on every check (CRU createHttpCheck), empty
		// unless metadata namespaces are configured.
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}}
}

// ResponseHeaderOp is one response_headers_to_add entry, applied to the
// upstream response before it reaches the client.
type ResponseHeaderOp struct {
	// Key is the lower-case header name.
	Key string
	// Value is the header value.
	Value string
	// Action is what Envoy does: "add", "set", "add_if_absent" or
	// "overwrite_if_exists".
	Action string
}

// AuthzResult is the outcome of one ext_authz check as Envoy applies it.
type AuthzResult struct {
	// Allowed is true when the request continues upstream.
	Allowed bool
	// Status is the local reply's status when not allowed (403 by default,
	// denied_response.status when set, StatusOnError on a transport error,
	// 413 for an oversized body); 0 when allowed.
	Status int
	// Headers are the local reply's headers when not allowed.
	Headers http.Header
	// Body is the local reply's body when not allowed.
	Body []byte
	// UpstreamHeaders are the request headers after the OK mutations,
	// pseudo-headers excluded.
	UpstreamHeaders http.Header
	// Path is :path after header and query parameter mutations.
	Path string
	// Host is :authority after mutations.
	Host string
	// Method is :method after mutations.
	Method string
	// ResponseHeaders are the response_headers_to_add of an OK response.
	ResponseHeaders []ResponseHeaderOp
	// DynamicMetadata is what Envoy stores under envoy.filters.http.ext_authz
	// (nil when the response carried none).
	DynamicMetadata map[string]any
	// CheckRequest is the request that was sent (nil for a 413).
	CheckRequest *authv3.CheckRequest
	// CheckResponse is the server's answer (nil on a transport error).
	CheckResponse *authv3.CheckResponse
	// Err is the transport error or timeout, if any.
	Err error

	headers requestHeaders
}

// ApplyResponseHeaders applies ResponseHeaders to the headers of the
// upstream response, as Envoy's ext_authz encodeHeaders does.
func (a *AuthzResult) ApplyResponseHeaders(h http.Header) {
	for _, op := range a.ResponseHeaders {
		switch op.Action {
		case "add":
			h.Add(op.Key, op.Value)
		case "set":
			h.Set(op.Key, op.Value)
		case "add_if_absent":
			if len(h.Values(op.Key)) == 0 {
				h.Add(op.Key, op.Value)
			}
		case "overwrite_if_exists":
			if len(h.Values(op.Key)) > 0 {
				h.Set(op.Key, op.Value)
			}
		}
	}
}

// Check calls the ext_authz server and applies the CheckResponse the way
// Envoy does. OK: OkHttpResponse headers are read from value only (never
// raw_value), append true comma-joins onto an existing header only, unset or
// false sets (or follows append_action under HonourAppendAction),
// headers_to_remove never removes ":"-prefixed headers or host,
// query_parameters_to_set/remove rewrite the path, response_headers_to_add
// are kept for the response. Any other gRPC status: denied, with
// denied_response's status (403 when unset), body and headers. A transport
// error or timeout: StatusOnError with an empty body. An oversized body
// without AllowPartialMessage: 413 and no check. The returned error is
// non-nil only when ctx itself is done; every Envoy outcome is in the result.
func Check(ctx context.Context, client authv3.AuthorizationClient, r *http.Request, body []byte, cfg AuthzConfig) (*AuthzResult, error) {
	cfg = cfg.withDefaults()
	return check(ctx, client, r, envoyHeaders(r, schemeOf(r, cfg.Scheme)), body, cfg)
}

func check(ctx context.Context, client authv3.AuthorizationClient, r *http.Request, hdrs requestHeaders, body []byte, cfg AuthzConfig) (*AuthzResult, error) {
	if cfg.bodyTooLarge(body) {
		return localReply(http.StatusRequestEntityTooLarge, nil, "Payload Too Large"), nil
	}
	start := time.Now()
	req := checkRequest(r, hdrs, body, cfg, start)
	callCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := client.Check(callCtx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("standin: ext_authz check: %w", ctx.Err())
		}
		res := localReply(cfg.StatusOnError, nil, "")
		res.CheckRequest = req
		res.Err = err
		return res, nil
	}
	res := applyCheckResponse(hdrs, resp, cfg, time.Since(start))
	res.CheckRequest = req
	return res, nil
}

func localReply(status int, hdrs []*corev3.HeaderValueOption, body string) *AuthzResult {
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "text/plain")
	}
	for _, o := range hdrs {
		if o.GetHeader() != nil {
			h.Del(o.GetHeader().GetKey())
		}
	}
	for _, o := range hdrs {
		if hv := o.GetHeader(); hv != nil {
			h.Add(hv.GetKey(), hv.GetValue())
		}
	}
	return &AuthzResult{Status: status, Headers: h, Body: []byte(body)}
}

// applyCheckResponse interprets resp for a request whose headers are hdrs.
func applyCheckResponse(hdrs requestHeaders, resp *authv3.CheckResponse, cfg AuthzConfig, took time.Duration) *AuthzResult {
	code := codes.Code(resp.GetStatus().GetCode())
	if code != codes.OK {
		if er := resp.GetErrorResponse(); er != nil {
			status := cfg.StatusOnError
			if s := int(er.GetStatus().GetCode()); s > 0 {
				status = s
			}
			res := localReply(status, er.GetHeaders(), er.GetBody())
			res.CheckResponse = resp
			res.Err = errors.New("standin: ext_authz error_response")
			return res
		}
		dr := resp.GetDeniedResponse()
		status := http.StatusForbidden
		if s := int(dr.GetStatus().GetCode()); s > 0 {
			status = s
		}
		res := localReply(status, dr.GetHeaders(), dr.GetBody())
		res.CheckResponse = resp
		return res
	}

	ok := resp.GetOkResponse()
	hdrs = append(requestHeaders(nil), hdrs...)
	for _, o := range ok.GetHeaders() {
		hv := o.GetHeader()
		if hv == nil {
			continue
		}
		key := strings.ToLower(hv.GetKey())
		value := hv.GetValue()
		switch {
		case o.GetAppend() != nil && o.GetAppend().GetValue():
			if hdrs.has(key) {
				hdrs = hdrs.appendValue(key, value)
			}
		case o.GetAppend() != nil || !cfg.HonourAppendAction:
			hdrs = hdrs.set(key, value)
		default:
			switch o.GetAppendAction() {
			case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
				hdrs = hdrs.add(key, value)
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				if !hdrs.has(key) {
					hdrs = hdrs.add(key, value)
				}
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				hdrs = hdrs.set(key, value)
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				if hdrs.has(key) {
					hdrs = hdrs.set(key, value)
				}
			}
		}
	}
	for _, k := range ok.GetHeadersToRemove() {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, ":") || k == "host" {
			continue
		}
		hdrs = hdrs.remove(k)
	}
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		path, _ := hdrs.get(":path")
		hdrs = hdrs.set(":path", rewriteQuery(path, ok.GetQueryParametersToSet(), ok.GetQueryParametersToRemove()))
	}

	res := &AuthzResult{Allowed: true, CheckResponse: resp, headers: hdrs}
	for _, o := range ok.GetResponseHeadersToAdd() {
		hv := o.GetHeader()
		if hv == nil {
			continue
		}
		op := ResponseHeaderOp{Key: strings.ToLower(hv.GetKey()), Value: hv.GetValue()}
		switch {
		case o.GetAppend() != nil && o.GetAppend().GetValue():
			op.Action = "add"
		case o.GetAppend() != nil:
			op.Action = "set"
		default:
			switch o.GetAppendAction() {
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				op.Action = "add_if_absent"
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				op.Action = "set"
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				op.Action = "overwrite_if_exists"
			default:
				op.Action = "add"
			}
		}
		res.ResponseHeaders = append(res.ResponseHeaders, op)
	}

	md := resp.GetDynamicMetadata()
	if ok.GetDynamicMetadata() != nil { //nolint:staticcheck // Envoy still honours the deprecated field, and it wins.
		md = ok.GetDynamicMetadata() //nolint:staticcheck
	}
	if len(md.GetFields()) > 0 {
		m := md.AsMap()
		m["ext_authz_duration"] = float64(took.Milliseconds())
		res.DynamicMetadata = m
	}

	res.UpstreamHeaders = http.Header{}
	for _, e := range hdrs {
		switch e.key {
		case ":path":
			res.Path = e.value
		case ":authority":
			res.Host = e.value
		case ":method":
			res.Method = e.value
		default:
			if !strings.HasPrefix(e.key, ":") {
				res.UpstreamHeaders[http.CanonicalHeaderKey(e.key)] = append(res.UpstreamHeaders[http.CanonicalHeaderKey(e.key)], e.value)
			}
		}
	}
	return res
}

// queryParam is one raw name=value pair of a query string.
type queryParam struct{ name, value string }

// rewriteQuery applies query_parameters_to_set (overwrite) and
// query_parameters_to_remove to path the way Envoy does: the query is parsed
// without decoding, parameters are kept sorted by name, and the query is
// rebuilt from them (no "?" when none remain).
func rewriteQuery(path string, set []*corev3.QueryParameter, remove []string) string {
	base, query, _ := strings.Cut(path, "?")
	byName := map[string][]string{}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			byName[k] = append(byName[k], v)
		}
	}
	for _, p := range set {
		byName[p.GetKey()] = []string{p.GetValue()}
	}
	for _, k := range remove {
		delete(byName, k)
	}
	names := make([]string, 0, len(byName))
	for k := range byName {
		names = append(names, k)
	}
	sort.Strings(names)
	var params []queryParam
	for _, k := range names {
		for _, v := range byName[k] {
			params = append(params, queryParam{k, v})
		}
	}
	if len(params) == 0 {
		return base
	}
	var b strings.Builder
	b.WriteString(base)
	for i, p := range params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}
