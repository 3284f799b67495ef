package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// UnixScheme prefixes a listen address naming a Unix domain socket:
// unix:///run/airlock/sds.sock.
const UnixScheme = "unix://"

// IsUnixAddr reports whether addr names a Unix domain socket (unix://PATH).
func IsUnixAddr(addr string) bool { return strings.HasPrefix(addr, UnixScheme) }

// UnixPath is the socket path of a unix:// address.
func UnixPath(addr string) string { return strings.TrimPrefix(addr, UnixScheme) }

// maxUnixPath is the longest socket path Linux accepts (sun_path less its NUL).
const maxUnixPath = 107

// DefaultHTTP is the listen.http server's protection against slow and
// greedy clients: a request must arrive whole within read_timeout, and one
// source address holds at most max_conns_per_source connections.
func DefaultHTTP() HTTP {
	return HTTP{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		MaxBodyBytes:      1 << 20,
		MaxConnsPerSource: 64,
	}
}

// DefaultGRPC is the gRPC servers' tuning. 1024 streams per connection is
// far above what one Envoy connection carries at the measured Check rates
// (Envoy opens another connection when a connection is full).
func DefaultGRPC() GRPC {
	return GRPC{
		MaxConcurrentStreams: 1024,
		KeepaliveMinTime:     10 * time.Second,
		KeepaliveTime:        30 * time.Second,
		KeepaliveTimeout:     10 * time.Second,
		ConnectionTimeout:    10 * time.Second,
	}
}

// validateServing checks the listeners' hardening keys, the SDS listener's
// protection and the issuers' restrictions.
func (c *Config) validateServing() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	between := func(key string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(key, "must be between %s and %s, not %s", lo, hi, d)
		}
	}

	h := c.HTTP
	between("http.read_header_timeout", h.ReadHeaderTimeout, 100*time.Millisecond, 5*time.Minute)
	between("http.read_timeout", h.ReadTimeout, 100*time.Millisecond, 30*time.Minute)
	between("http.write_timeout", h.WriteTimeout, 100*time.Millisecond, 30*time.Minute)
	between("http.idle_timeout", h.IdleTimeout, 100*time.Millisecond, time.Hour)
	if h.ReadHeaderTimeout > h.ReadTimeout {
		bad("http.read_header_timeout", "must not exceed http.read_timeout (%s)", h.ReadTimeout)
	}
	if h.MaxHeaderBytes < 4<<10 || h.MaxHeaderBytes > 1<<20 {
		bad("http.max_header_bytes", "must be between 4096 and 1048576, not %d", h.MaxHeaderBytes)
	}
	if h.MaxBodyBytes < 1<<10 || h.MaxBodyBytes > 64<<20 {
		bad("http.max_body_bytes", "must be between 1024 and 67108864, not %d", h.MaxBodyBytes)
	}
	if h.MaxConnsPerSource < 0 || h.MaxConnsPerSource > 100000 {
		bad("http.max_conns_per_source", "must be between 0 (no cap) and 100000, not %d", h.MaxConnsPerSource)
	}

	g := c.GRPC
	if g.MaxConcurrentStreams < 16 {
		bad("grpc.max_concurrent_streams", "must be at least 16, not %d: Envoy multiplexes many Checks on one connection", g.MaxConcurrentStreams)
	}
	between("grpc.keepalive_min_time", g.KeepaliveMinTime, time.Second, time.Hour)
	between("grpc.keepalive_time", g.KeepaliveTime, time.Second, 24*time.Hour)
	between("grpc.keepalive_timeout", g.KeepaliveTimeout, time.Second, time.Hour)
	between("grpc.connection_timeout", g.ConnectionTimeout, 100*time.Millisecond, 10*time.Minute)

	errs = append(errs, c.validateSDS()...)

	if c.Identity.MaxTokenLifetime < time.Minute || c.Identity.MaxTokenLifetime > 31*24*time.Hour {
		bad("identity.max_token_lifetime", "must be between 1m and 744h, not %s", c.Identity.MaxTokenLifetime)
	}
	for i, is := range c.Identity.Issuers {
		key := fmt.Sprintf("identity.issuers[%d]", i)
		for j, s := range is.AllowedSubjects {
			if strings.TrimSpace(s) == "" || s == "*" {
				bad(fmt.Sprintf("%s.allowed_subjects[%d]", key, j), "%q admits every subject; name subjects (a trailing * matches a prefix)", s)
			} else if strings.Contains(strings.TrimSuffix(s, "*"), "*") {
				bad(fmt.Sprintf("%s.allowed_subjects[%d]", key, j), "%q: only a trailing * is a wildcard", s)
			}
		}
		for j, d := range is.AllowedEmailDomains {
			if strings.HasPrefix(d, "@") || !validHostname(d) {
				bad(fmt.Sprintf("%s.allowed_email_domains[%d]", key, j), "%q is not a domain name (write example.com, not @example.com)", d)
			}
		}
		for j, d := range is.AllowedHD {
			if !validHostname(d) {
				bad(fmt.Sprintf("%s.allowed_hd[%d]", key, j), "%q is not a domain name", d)
			}
		}
	}
	return errs
}

// validateSDS checks listen.sds and the sds keys: a Unix socket, loopback,
// or mTLS; a TCP address off loopback without mTLS only with
// sds.allow_insecure_tcp.
func (c *Config) validateSDS() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	s := c.SDS
	files := []struct{ key, path string }{{"sds.tls_cert", s.TLSCert}, {"sds.tls_key", s.TLSKey}, {"sds.client_ca", s.ClientCA}}
	tlsSet := s.TLSCert != "" || s.TLSKey != "" || s.ClientCA != ""
	mtls := s.TLSCert != "" && s.TLSKey != "" && s.ClientCA != ""
	for _, f := range files {
		switch {
		case f.path == "" && tlsSet:
			bad(f.key, "sds.tls_cert, sds.tls_key and sds.client_ca go together: the SDS listener requires client certificates")
		case f.path != "":
			if _, err := os.Stat(f.path); err != nil {
				bad(f.key, "%q: %v", f.path, errors.Unwrap(err))
			}
		}
	}
	addr := c.Listen.SDS
	switch {
	case addr == "":
		if tlsSet {
			bad("sds.tls_cert", "is set but listen.sds is empty")
		}
	case IsUnixAddr(addr):
		p := UnixPath(addr)
		switch {
		case !filepath.IsAbs(p) || filepath.Clean(p) != p:
			bad("listen.sds", "%q: want unix:///ABSOLUTE/PATH, e.g. unix:///run/airlock/sds.sock", addr)
		case len(p) > maxUnixPath:
			bad("listen.sds", "%q: a socket path is at most %d bytes", addr, maxUnixPath)
		}
		if tlsSet {
			bad("sds.tls_cert", "mTLS applies to a TCP listen.sds; a Unix socket is guarded by its file permissions")
		}
		if s.AllowInsecureTCP {
			bad("sds.allow_insecure_tcp", "applies to a TCP listen.sds, not to %q", addr)
		}
	default:
		if validAddr(addr) != nil || loopbackAddr(addr) || mtls || s.AllowInsecureTCP {
			return errs
		}
		host, _, _ := net.SplitHostPort(addr)
		if host == "" {
			host = "every interface"
		}
		bad("listen.sds", "%q binds %s: SDS hands out the GCP access token to whoever connects. Bind it to loopback (127.0.0.1:PORT), "+
			"a Unix socket (unix:///run/airlock/sds.sock), or require client certificates (sds.tls_cert, sds.tls_key, sds.client_ca); "+
			"sds.allow_insecure_tcp: true overrides this when the network guards the port (an Istio sidecar with mTLS and an AuthorizationPolicy)", addr, host)
	}
	return errs
}
