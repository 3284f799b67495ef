package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/config"
)

// newHTTPServer is the server on listen.http (approvals API, web page,
// /metrics, health), bounded against slow and greedy clients: a request
// must arrive whole within http.read_timeout, its headers within
// http.read_header_timeout and http.max_header_bytes, its body within
// http.max_body_bytes.
func newHTTPServer(c config.HTTP, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           limitBody(h, c.MaxBodyBytes),
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// limitBody answers 413 to a request declaring a body over max, and cuts a
// body sent without a length at max (the handler's read then fails).
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"error":{"code":413,"status":"INVALID_ARGUMENT","message":"airlock: the request body is larger than %d bytes (http.max_body_bytes)"}}`+"\n", max)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// sourceLimitListener caps the connections one source holds open at once:
// a connection beyond the cap is answered 429 and closed at once, so that
// one client cannot take every connection the process can hold. IPv6
// sources count by /64, which one host usually owns whole.
type sourceLimitListener struct {
	net.Listener
	max     int
	refused atomic.Int64

	mu   sync.Mutex
	open map[string]int
}

func newSourceLimitListener(l net.Listener, max int) *sourceLimitListener {
	return &sourceLimitListener{Listener: l, max: max, open: map[string]int{}}
}

// tooMany is written to a connection over the cap before it is closed.
var tooMany = func() []byte {
	const body = "airlock: too many connections from this address (http.max_conns_per_source); retry later\n"
	return fmt.Appendf(nil, "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

func (l *sourceLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceKey(c.RemoteAddr())
		l.mu.Lock()
		if l.open[src] >= l.max {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(tooMany)
			_ = c.Close()
			continue
		}
		l.open[src]++
		l.mu.Unlock()
		return &sourceConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *sourceLimitListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src] <= 1 {
		delete(l.open, src)
		return
	}
	l.open[src]--
}

// sourceKey is the address a connection counts against: its IP, or the
// /64 of an IPv6 address.
func sourceKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// sourceConn gives its place back once, when it is closed.
type sourceConn struct {
	net.Conn
	l    *sourceLimitListener
	src  string
	once sync.Once
}

func (c *sourceConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}
