// Package redistest starts real redis-server processes on free local ports
// for tests. A Server can be stopped, killed and restarted on the same port
// (and the same data directory) to exercise failure and recovery paths.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the program Start runs; it must be on PATH.
const Binary = "redis-server"

// startDeadline bounds how long Start and Restart wait for the port.
const startDeadline = 10 * time.Second

// Options tune a Server. The zero value is an in-memory server without
// persistence.
type Options struct {
	// Persist turns on the append-only file (appendfsync always) so that data
	// survives Kill and Restart.
	Persist bool
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
	// ConfigFile, when set, is written into the data directory and passed
	// as redis-server's first argument (e.g. "sentinel monitor ..." with
	// Args "--sentinel").
	ConfigFile string
}

// Server is one redis-server process bound to 127.0.0.1.
type Server struct {
	tb   testing.TB
	opts Options
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

// Start starts a redis-server without persistence and stops it when the test
// ends. When the binary is missing it fails the test if CI=true and skips it
// otherwise.
func Start(tb testing.TB) *Server { tb.Helper(); return StartWith(tb, Options{}) }

// StartPersistent starts a redis-server with the append-only file on, so that
// its data survives Kill and Restart.
func StartPersistent(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{Persist: true})
}

// StartWith starts a redis-server with opts; see Start.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	Require(tb)
	s := &Server{tb: tb, opts: opts, dir: tb.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: free port: %v", err)
		}
		s.port = port
		if lastErr = s.launch(); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: start %s: %v", Binary, lastErr)
	return nil
}

// Require skips (or, with CI=true, fails) the test when redis-server is not on
// PATH.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: %s not found on PATH (CI=true): %v", Binary, err)
		}
		tb.Skipf("redistest: %s not found on PATH; install it (apt-get install redis-server) to run this test", Binary)
	}
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is redis://127.0.0.1:PORT/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working (data) directory.
func (s *Server) Dir() string { return s.dir }

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(false)
}

// Kill ends the server abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(true)
}

// Restart starts the server again on the same port and data directory; it
// stops it first if it is running. It fails the test if the port does not
// come up before the deadline.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	s.stopLocked(false)
	s.mu.Unlock()
	var err error
	// The port may linger briefly after the old process exits.
	deadline := time.Now().Add(startDeadline)
	for {
		if err = s.launch(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: restart on %s: %v", s.Addr(), err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stopLocked(kill bool) {
	if s.cmd == nil {
		return
	}
	if kill {
		_ = s.cmd.Process.Kill()
	} else {
		_ = s.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	s.exited = nil
	if s.log != nil {
		_ = s.log.Close()
		s.log = nil
	}
}

func (s *Server) launch() error {
	var args []string
	if s.opts.ConfigFile != "" {
		conf := filepath.Join(s.dir, "redis.conf")
		if _, err := os.Stat(conf); os.IsNotExist(err) { // Sentinel rewrites it; keep it on restart
			if err := os.WriteFile(conf, []byte(s.opts.ConfigFile), 0o600); err != nil {
				return err
			}
		}
		args = append(args, conf)
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir, "--daemonize", "no")
	switch {
	case s.opts.ConfigFile != "":
		// The config file decides persistence (Sentinel rejects the options).
	case s.opts.Persist:
		args = append(args, "--save", "", "--protected-mode", "no", "--appendonly", "yes", "--appendfsync", "always")
	default:
		args = append(args, "--save", "", "--protected-mode", "no", "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startDeadline)
	for {
		select {
		case err := <-exited:
			_ = logf.Close()
			return fmt.Errorf("%s exited: %v; log: %s", Binary, err, tail(filepath.Join(s.dir, "redis.log")))
		default:
		}
		if ping(s.Addr()) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			_ = logf.Close()
			return fmt.Errorf("port %s not ready after %s", s.Addr(), startDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, logf
	s.mu.Unlock()
	return nil
}

// ping reports whether a Redis at addr answers PING with PONG.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return strings.TrimSpace(string(b))
}
