package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// jsonLines returns the JSON log lines of component, failing on any line
// that is not JSON (an unstructured line written around slog).
func jsonLines(t *testing.T, out, component string) []map[string]any {
	t.Helper()
	var got []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		if m["component"] == component {
			got = append(got, m)
		}
	}
	return got
}

// TestLibraryLogsGoThroughSlog: go-redis, gRPC and the log package write
// JSON lines through the configured logger, not their own text to stderr.
func TestLibraryLogsGoThroughSlog(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	routeLibraryLogs(logger)
	t.Cleanup(func() { slog.SetDefault(prev) })

	// go-redis logs a failed Sentinel lookup.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "main", SentinelAddrs: []string{addr}, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = rdb.Ping(ctx).Err()
	cancel()
	rdb.Close()

	// gRPC logs a client that does not speak HTTP/2.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	go func() { _ = g.Serve(l) }()
	defer g.Stop()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_, _ = c.Read(make([]byte, 64))
	c.Close()

	log.Print("a line from the log package")

	deadline := time.Now().Add(10 * time.Second)
	for {
		out := buf.String()
		r, g, std := jsonLines(t, out, "redis"), jsonLines(t, out, "grpc"), strings.Contains(out, `"msg":"a line from the log package"`)
		if len(r) > 0 && len(g) > 0 && std {
			if !strings.Contains(r[0]["msg"].(string), "sentinel") || r[0]["level"] != "WARN" {
				t.Errorf("redis line: %v", r[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: redis %d lines, grpc %d lines, log package %v:\n%s", len(r), len(g), std, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
