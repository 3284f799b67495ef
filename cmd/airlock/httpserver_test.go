package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/config"
)

// serveHTTP runs newHTTPServer with c on a loopback port behind the
// per-source cap and returns its address.
func serveHTTP(t *testing.T, c config.HTTP) (string, *sourceLimitListener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	})
	hs := newHTTPServer(c, mux, slog.New(slog.DiscardHandler))
	sl := newSourceLimitListener(l, c.MaxConnsPerSource)
	go func() { _ = hs.Serve(sl) }()
	t.Cleanup(func() { hs.Close() })
	return l.Addr().String(), sl
}

// rawRequest writes req on a new connection and returns the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestHTTPServerLimits(t *testing.T) {
	c := config.DefaultHTTP()
	c.MaxBodyBytes = 1024
	c.MaxHeaderBytes = 4096
	addr, _ := serveHTTP(t, c)

	if got := rawRequest(t, addr, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); got != "HTTP/1.1 200 OK" {
		t.Errorf("small body: %s", got)
	}
	if got := rawRequest(t, addr, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n"); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("declared large body: %s", got)
	}
	chunked := "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("a", 2048) + "\r\n0\r\n\r\n"
	if got := rawRequest(t, addr, chunked); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("chunked large body: %s", got)
	}
	big := "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 16<<10) + "\r\n\r\n"
	if got := rawRequest(t, addr, big); got != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("large headers: %s", got)
	}
}

// TestSourceLimitListener: the connection over the cap is answered 429 and
// closed at once; a closed connection gives its place back.
func TestSourceLimitListener(t *testing.T) {
	c := config.DefaultHTTP()
	c.MaxConnsPerSource = 3
	addr, sl := serveHTTP(t, c)
	var held []net.Conn
	for range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	// The listener counts a connection once it has accepted it: wait until
	// the three are in.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sl.mu.Lock()
		n := sl.open["127.0.0.1"]
		sl.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted, want 3", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := rawRequest(t, addr, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"); got != "HTTP/1.1 429 Too Many Requests" {
		t.Fatalf("fourth connection: %s", got)
	}
	if sl.refused.Load() != 1 {
		t.Errorf("refused = %d", sl.refused.Load())
	}
	// Another source address is not affected.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other := http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := other.Post("http://"+addr+"/echo", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("another source: %d", resp.StatusCode)
	}
	held[0].Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		if got := rawRequest(t, addr, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); got == "HTTP/1.1 200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not give its place back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5":                 "127.0.0.1",
		"[::ffff:10.0.0.1]:5":         "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:9":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff:ff:ff:0]:9": "2001:db8:1:2::/64",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourceKey(a); got != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}
