package standin

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// GoogleAPIsSuffix is the host suffix the upstream route accepts.
const GoogleAPIsSuffix = ".googleapis.com"

// ResponseFilter is the ext_proc stage of the Front. The Front calls it for
// every request ext_authz allowed; it talks to the ext_proc server, calls
// next (credential injector, host rewrite, upstream) with the possibly
// mutated request, processes the response and writes it to w.
//
// r is the request as Envoy's ext_proc filter sees it: headers after the
// ext_authz mutations (lower-case names canonicalised by net/http, x-request-id
// and x-forwarded-proto included, no Authorization when airlock removed it),
// method in r.Method, :authority in r.Host, :path in r.RequestURI (and
// r.URL.Path/RawQuery), :scheme in r.URL.Scheme, the complete body in r.Body
// (EnvoyHeaders lists the headers exactly as Envoy sends them). md is the
// metadata_context Envoy forwards (forwarding_namespaces.untyped:
// envoy.filters.http.ext_authz); it is nil when ext_authz returned none.
type ResponseFilter interface {
	Filter(w http.ResponseWriter, r *http.Request, md *corev3.Metadata, next http.Handler)
}

// FrontConfig wires a Front.
type FrontConfig struct {
	// Authz is the ext_authz client (airlock's listen.authz). Required.
	Authz authv3.AuthorizationClient
	// AuthzConfig is the ext_authz filter configuration.
	AuthzConfig AuthzConfig
	// ExtProc, when set, runs after ext_authz and before the credential
	// injector, as in the shipped Envoy configuration.
	ExtProc ResponseFilter
	// Credentials, when set, enables the credential injector (an SDSClient
	// in end-to-end tests). Nil leaves the request's Authorization as is.
	Credentials CredentialSource
	// CredentialName is the SDS secret injected (config credentials[0].name).
	CredentialName string
	// CredentialHeader is the header the credential goes in; default
	// Authorization. The injector overwrites it.
	CredentialHeader string
	// GatewayDomains: SERVICE.DOMAIN is rewritten to SERVICE.googleapis.com
	// before forwarding.
	GatewayDomains []string
	// GatewayLua, when set, is the Lua filter of the rendered bootstrap
	// (BootstrapLua): the Front routes *.googleapis.com and *.DOMAIN for
	// each gateway domain, and runs the script's envoy_on_request on the
	// :authority after the credential injector, as Envoy does, instead of
	// its own SERVICE.DOMAIN mapping.
	GatewayLua string
	// Upstream is the base URL every allowed request is sent to (an
	// httptest fake of Google); the Host header stays the Google host.
	// Required.
	Upstream string
	// Transport sends upstream requests; default http.DefaultTransport.
	Transport http.RoundTripper
	// MaxBodyBytes bounds the request body the Front reads; default 64 MiB.
	MaxBodyBytes int64

	// setupErr is a problem AirlockFrontConfig found; NewFront reports it.
	setupErr error
}

// Front is the Envoy stand-in as one http.Handler: for each request it
// builds the CheckRequest, calls ext_authz and applies its answer, runs the
// ext_proc filter, injects the credential, rewrites gateway hosts and
// forwards to the upstream; on the way back ext_authz's
// response_headers_to_add are applied.
type Front struct {
	cfg      FrontConfig
	upstream *url.URL
	err      error // a configuration error, answered as 500 to every request
}

var _ http.Handler = (*Front)(nil)

// NewFront builds a Front. A configuration error (no Authz client, an
// Upstream that is not an absolute URL) makes every request answer 500 with
// the error as body, so a test fails with the reason in view.
func NewFront(cfg FrontConfig) *Front {
	f := &Front{}
	u, err := url.Parse(cfg.Upstream)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "":
		f.err = fmt.Errorf("standin: FrontConfig.Upstream must be an absolute URL, got %q", cfg.Upstream)
	case cfg.Authz == nil:
		f.err = fmt.Errorf("standin: FrontConfig.Authz is required")
	case cfg.setupErr != nil:
		f.err = cfg.setupErr
	}
	if cfg.CredentialHeader == "" {
		cfg.CredentialHeader = "Authorization"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	cfg.AuthzConfig = cfg.AuthzConfig.withDefaults()
	f.cfg, f.upstream = cfg, u
	return f
}

// ServeHTTP implements http.Handler.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.err != nil {
		localReply(http.StatusInternalServerError, nil, f.err.Error()).write(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, f.cfg.MaxBodyBytes+1))
	if err != nil {
		localReply(http.StatusBadRequest, nil, "").write(w)
		return
	}
	if int64(len(body)) > f.cfg.MaxBodyBytes {
		localReply(http.StatusRequestEntityTooLarge, nil, "Payload Too Large").write(w)
		return
	}
	scheme := schemeOf(r, f.cfg.AuthzConfig.Scheme)
	hdrs := envoyHeaders(r, scheme)
	// The connection manager strips any port from the host
	// (strip_any_host_port), before any filter.
	host, _ := hdrs.get(":authority")
	hdrs = hdrs.set(":authority", stripPort(host))

	res, err := check(r.Context(), f.cfg.Authz, r, hdrs, body, f.cfg.AuthzConfig)
	if err != nil {
		return // the client went away
	}
	if !res.Allowed {
		res.write(w)
		return
	}

	fr := filteredRequest(r, res, scheme, body)
	rw := &responseHeaderWriter{ResponseWriter: w, res: res}
	next := http.HandlerFunc(f.forward)
	if f.cfg.ExtProc != nil {
		f.cfg.ExtProc.Filter(rw, fr, authzMetadata(res), next)
	} else {
		next.ServeHTTP(rw, fr)
	}
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
}

// write sends a local reply.
func (a *AuthzResult) write(w http.ResponseWriter) {
	for k, v := range a.Headers {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// filteredRequest is the request after ext_authz, as later filters see it.
func filteredRequest(r *http.Request, res *AuthzResult, scheme string, body []byte) *http.Request {
	fr := r.Clone(r.Context())
	fr.Method = res.Method
	fr.Host = res.Host
	fr.RequestURI = res.Path
	u, err := url.ParseRequestURI(res.Path)
	if err != nil {
		u = &url.URL{Path: res.Path}
	}
	u.Scheme = scheme
	u.Host = res.Host
	fr.URL = u
	fr.Header = res.UpstreamHeaders.Clone()
	fr.Body = io.NopCloser(bytes.NewReader(body))
	fr.ContentLength = int64(len(body))
	fr.TransferEncoding = nil
	return fr
}

// authzMetadata is the metadata_context Envoy forwards to ext_proc.
func authzMetadata(res *AuthzResult) *corev3.Metadata {
	if res.DynamicMetadata == nil {
		return nil
	}
	s, err := structpb.NewStruct(res.DynamicMetadata)
	if err != nil {
		return nil
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{AuthzNamespace: s}}
}

// EnvoyHeaders lists the headers of r as Envoy's filters see them:
// :scheme, :method, :authority, :path, then every header (lower-case names,
// duplicates as separate entries, hop-by-hop headers removed), then the
// x-forwarded-proto and x-request-id the connection manager adds when
// absent. :scheme comes from r.URL.Scheme when set, else the connection.
func EnvoyHeaders(r *http.Request) [][2]string {
	h := envoyHeaders(r, schemeOf(r, ""))
	out := make([][2]string, len(h))
	for i, e := range h {
		out[i] = [2]string{e.key, e.value}
	}
	return out
}

// forward is the credential injector, the gateway host rewrite and the
// router.
func (f *Front) forward(w http.ResponseWriter, r *http.Request) {
	if f.cfg.Credentials != nil {
		v, ok := f.cfg.Credentials.Credential(f.cfg.CredentialName)
		if !ok {
			localReply(http.StatusUnauthorized, nil, "Failed to inject credential.").write(w)
			return
		}
		r.Header.Set(f.cfg.CredentialHeader, v)
	}
	host, local := f.route(r.Host)
	if local != nil {
		local.write(w)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Host = host
	out.URL = &url.URL{
		Scheme:   f.upstream.Scheme,
		Host:     f.upstream.Host,
		Path:     r.URL.Path,
		RawPath:  r.URL.RawPath,
		RawQuery: r.URL.RawQuery,
	}
	out.Header = r.Header.Clone()
	for k := range hopByHop {
		out.Header.Del(k)
	}
	resp, err := f.cfg.Transport.RoundTrip(out)
	if err != nil {
		localReply(http.StatusServiceUnavailable, nil,
			"upstream connect error or disconnect/reset before headers. reset reason: connection failure").write(w)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	for k, v := range resp.Header {
		if hopByHop[strings.ToLower(k)] {
			continue
		}
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr != nil {
			return
		}
	}
}

// route returns the Google host a request for host is forwarded to, or the
// local reply that answers it instead: 404 with no body when no virtual
// host matches, or what the gateway Lua answered.
func (f *Front) route(host string) (string, *AuthzResult) {
	if f.cfg.GatewayLua == "" {
		if h, ok := f.googleHost(host); ok {
			return h, nil
		}
		return "", localReply(http.StatusNotFound, nil, "")
	}
	host = stripPort(host)
	if !f.virtualHost(strings.ToLower(host)) {
		return "", localReply(http.StatusNotFound, nil, "")
	}
	res, err := runRequestLua(f.cfg.GatewayLua, host)
	if err != nil {
		return "", localReply(http.StatusInternalServerError, nil, err.Error())
	}
	if res.local != nil {
		return "", res.local
	}
	return res.authority, nil
}

// virtualHost reports whether one of the bootstrap's virtual hosts,
// *.googleapis.com and *.DOMAIN for each gateway domain, matches host.
func (f *Front) virtualHost(host string) bool {
	suffixes := []string{GoogleAPIsSuffix}
	for _, d := range f.cfg.GatewayDomains {
		suffixes = append(suffixes, "."+strings.ToLower(strings.Trim(d, ".")))
	}
	for _, s := range suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// googleHost maps the request host to the Google host it is forwarded to:
// *.googleapis.com as is, SERVICE.GATEWAY_DOMAIN to SERVICE.googleapis.com;
// false when no route matches.
func (f *Front) googleHost(host string) (string, bool) {
	host = strings.ToLower(stripPort(host))
	if strings.HasSuffix(host, GoogleAPIsSuffix) && len(host) > len(GoogleAPIsSuffix) {
		return host, true
	}
	for _, d := range f.cfg.GatewayDomains {
		suffix := "." + strings.ToLower(strings.TrimPrefix(d, "."))
		if svc, ok := strings.CutSuffix(host, suffix); ok && svc != "" && !strings.Contains(svc, ".") {
			return svc + GoogleAPIsSuffix, true
		}
	}
	return "", false
}

func stripPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// responseHeaderWriter applies ext_authz's response_headers_to_add when the
// response headers go out (ext_authz's encodeHeaders runs last on the way
// back, after ext_proc).
type responseHeaderWriter struct {
	http.ResponseWriter
	res   *AuthzResult
	wrote bool
}

func (w *responseHeaderWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.res.ApplyResponseHeaders(w.ResponseWriter.Header())
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseHeaderWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes flushes through so streamed bodies stream.
func (w *responseHeaderWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.WriteHeader(http.StatusOK)
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseHeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
