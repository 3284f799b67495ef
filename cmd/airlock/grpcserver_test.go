package main

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/airlockhq/airlock/config"
)

// serveGRPCOptions serves a gRPC health server with grpcServerOptions(c)
// and returns a raw connection that has sent the HTTP/2 preface and an
// empty SETTINGS frame, with a framer on it.
func rawHTTP2(t *testing.T, c config.GRPC) (net.Conn, *http2.Framer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpcServerOptions(c)...)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return conn, fr
}

// TestGRPCAdvertisesMaxConcurrentStreams: the server's SETTINGS cap the
// streams of one connection at grpc.max_concurrent_streams.
func TestGRPCAdvertisesMaxConcurrentStreams(t *testing.T) {
	c := config.DefaultGRPC()
	_, fr := rawHTTP2(t, c)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
		if !ok || v != c.MaxConcurrentStreams {
			t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent %v), want %d", v, ok, c.MaxConcurrentStreams)
		}
		return
	}
}

// TestGRPCEnforcesKeepalive: a client pinging far more often than
// grpc.keepalive_min_time is sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
func TestGRPCEnforcesKeepalive(t *testing.T) {
	_, fr := rawHTTP2(t, config.DefaultGRPC())
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed the connection
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q", ga.ErrCode, ga.DebugData())
			}
			return
		}
	}
}

// TestGRPCConnectionTimeout: a connection that never completes its
// handshake is closed after grpc.connection_timeout.
func TestGRPCConnectionTimeout(t *testing.T) {
	c := config.DefaultGRPC()
	c.ConnectionTimeout = 300 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpcServerOptions(c)...)
	go func() { _ = g.Serve(l) }()
	defer g.Stop()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.ReadAll(conn) // until the server closes it
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a silent connection was held %s", d)
	}
}
