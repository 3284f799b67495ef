// Package e2e drives the built `airlock` binary from outside, through
// Envoy's gRPC protocols (via the stand-in in test/standin), its
// configuration, its CLI and its HTTP API.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// airlockBin is the binary under test, built once by TestMain.
var airlockBin string

// repoRoot is the module root (policies/examples lives there).
var repoRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	// AIRLOCK_E2E_BIN runs the suite against an already built binary
	// (a release artefact, say) instead of building one.
	if airlockBin = os.Getenv("AIRLOCK_E2E_BIN"); airlockBin == "" {
		airlockBin = filepath.Join(dir, "airlock")
		build := exec.Command("go", "build", "-o", airlockBin, "./cmd/airlock")
		build.Dir = repoRoot
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building airlock:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Airlock is one running `airlock serve` process.
type Airlock struct {
	AuthzAddr, ExtProcAddr, SDSAddr, HTTPAddr string
	ConfigPath                                string
	Dir                                       string
	cmd                                       *exec.Cmd
	logs                                      *syncBuffer
	done                                      chan struct{}
}

// Ports are the listen addresses substituted into a config template.
type Ports struct{ Authz, ExtProc, SDS, HTTP string }

// startAirlock writes the config produced by render and runs `airlock serve`
// with it, waiting until the ext_authz health service answers SERVING.
func startAirlock(t *testing.T, render func(p Ports, dir string) string) *Airlock {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p := Ports{Authz: freePort(t), ExtProc: freePort(t), SDS: freePort(t), HTTP: freePort(t)}
		cfg := filepath.Join(dir, "airlock.yaml")
		if err := os.WriteFile(cfg, []byte(render(p, dir)), 0o644); err != nil {
			t.Fatal(err)
		}
		a := &Airlock{AuthzAddr: p.Authz, ExtProcAddr: p.ExtProc, SDSAddr: p.SDS, HTTPAddr: p.HTTP, ConfigPath: cfg, Dir: dir, logs: &syncBuffer{}, done: make(chan struct{})}
		err := a.launch(t)
		if err == nil {
			return a
		}
		// A port found free may be taken by another test process before
		// airlock binds it: pick new ones.
		if attempt < 5 && strings.Contains(a.Logs(), "address already in use") {
			continue
		}
		t.Fatal(err)
	}
}

// launch runs `airlock serve` and waits until it is ready.
func (a *Airlock) launch(t *testing.T) error {
	t.Helper()
	a.done = make(chan struct{})
	a.cmd = exec.Command(airlockBin, "serve", "--config", a.ConfigPath)
	a.cmd.Dir = repoRoot
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("airlock serve output:\n%s", a.Logs())
		}
	})
	return a.waitReady(t)
}

// Stop ends the process with SIGTERM (SIGKILL after 5 s).
func (a *Airlock) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// Logs is everything the process printed.
func (a *Airlock) Logs() string { return a.logs.String() }

func (a *Airlock) waitReady(t *testing.T) error {
	t.Helper()
	conn := dial(t, a.AuthzAddr)
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-a.done:
			return fmt.Errorf("airlock serve exited before it was ready:\n%s", a.Logs())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("airlock serve not ready after 30s (last error %v):\n%s", err, a.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Authz returns an ext_authz client for this process.
func (a *Airlock) Authz(t *testing.T) authv3.AuthorizationClient {
	return authv3.NewAuthorizationClient(dial(t, a.AuthzAddr))
}

// Get fetches a path on listen.http.
func (a *Airlock) Get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// runCLI runs the airlock binary with args and returns its exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(airlockBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}
