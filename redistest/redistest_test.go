package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
		line, _ = r.ReadString('\n')
	}
	return strings.TrimSpace(line)
}

func TestStartKillRestartPersists(t *testing.T) {
	s := StartPersistent(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/0") {
		t.Fatalf("URL = %q", s.URL())
	}
	if got := do(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	addr := s.Addr()
	s.Kill()
	if ping(addr) {
		t.Fatal("server still answers after Kill")
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Restart moved from %s to %s", addr, s.Addr())
	}
	if got := do(t, s.Addr(), "GET k"); got != "v" {
		t.Fatalf("GET after restart = %q, want v", got)
	}
	s.Stop()
	if ping(addr) {
		t.Fatal("server still answers after Stop")
	}
	s.Stop() // idempotent
}

func TestStartWithoutPersistenceLosesData(t *testing.T) {
	s := Start(t)
	do(t, s.Addr(), "SET k v")
	s.Restart()
	if got := do(t, s.Addr(), "GET k"); got != "$-1" {
		t.Fatalf("GET after restart = %q, want nil", got)
	}
}
