package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

type loginRun struct {
	stderr *lockedBuffer
	done   chan int
	cancel context.CancelFunc
}

func startLogin(t *testing.T, args ...string) *loginRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &loginRun{stderr: &lockedBuffer{}, done: make(chan int, 1), cancel: cancel}
	go func() { r.done <- run(ctx, append([]string{"login"}, args...), &lockedBuffer{}, r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("airlock login did not stop")
		}
	})
	return r
}

func (r *loginRun) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(d):
		t.Fatalf("airlock login still running after %s:\n%s", d, r.stderr.String())
		return 0
	}
}

func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// approveNext approves the next device code as alice, after checking the
// login printed it for her.
func approveNext(t *testing.T, d *identitytest.DeviceIssuer, r *loginRun) {
	t.Helper()
	code, err := d.NextUserCode(20 * time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stderr.String())
	}
	poll(t, 10*time.Second, "the code on the terminal", func() bool {
		return strings.Contains(r.stderr.String(), "enter the code "+code) && strings.Contains(r.stderr.String(), d.URL()+"/device")
	})
	if err := d.Approve(code, map[string]any{"sub": "alice", "email": "alice@acme.example", "email_verified": true, "groups": []string{"ai-agents"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLoginWritesATokenAirlockAcceptsAndKeepsItFresh(t *testing.T) {
	d := identitytest.NewDeviceIssuer(t, "airlock")
	d.SetLifetime(4 * time.Second)
	file := filepath.Join(t.TempDir(), "cfg", "token")
	r := startLogin(t, "--issuer", d.URL(), "--token-file", file)
	approveNext(t, d, r)
	poll(t, 20*time.Second, "the token file", func() bool { return readToken(t, file) != "" })
	first := readToken(t, file)

	v, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{d.Config("airlock", "groups")}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), first)
	if err != nil || id.Subject != "alice" || id.Groups[0] != "ai-agents" {
		t.Fatalf("the token airlock login wrote: %+v, %v", id, err)
	}
	for _, p := range []string{file, file + ".state", filepath.Dir(file)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; others may read it", p, fi.Mode().Perm())
		}
	}
	if strings.Contains(r.stderr.String(), first) {
		t.Fatal("the token was printed")
	}

	// Before it expires, the token is replaced by a refreshed one, and
	// nobody is asked again.
	poll(t, 20*time.Second, "a refreshed token", func() bool {
		tok := readToken(t, file)
		return tok != "" && tok != first
	})
	exp, _ := identity.TokenExpiry(first)
	if time.Now().After(exp) {
		t.Errorf("the token was refreshed only after it expired at %s", exp)
	}
	if _, err := v.Verify(context.Background(), readToken(t, file)); err != nil {
		t.Fatalf("refreshed token: %v", err)
	}
	if d.Refreshes() < 1 {
		t.Fatal("no refresh grant reached the issuer")
	}
	if _, err := d.NextUserCode(10 * time.Millisecond); err == nil {
		t.Fatal("the refresh asked for a second device code")
	}
	r.cancel()
	if code := r.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestLoginOnceRefreshesWithoutAsking(t *testing.T) {
	d := identitytest.NewDeviceIssuer(t, "airlock")
	file := filepath.Join(t.TempDir(), "token")
	r := startLogin(t, "--issuer", d.URL(), "--token-file", file, "--once")
	approveNext(t, d, r)
	if code := r.exit(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.stderr.String())
	}
	first := readToken(t, file)

	r = startLogin(t, "--issuer", d.URL(), "--token-file", file, "--once")
	if code := r.exit(t, 20*time.Second); code != 0 {
		t.Fatalf("second run: exit %d:\n%s", code, r.stderr.String())
	}
	if tok := readToken(t, file); tok == first || tok == "" || d.Refreshes() != 1 || strings.Contains(r.stderr.String(), "enter the code") {
		t.Fatalf("the second run did not refresh silently (refreshes %d):\n%s", d.Refreshes(), r.stderr.String())
	}

	// A revoked refresh token sends the person back to the browser.
	d.RevokeRefreshTokens()
	r = startLogin(t, "--issuer", d.URL(), "--token-file", file, "--once")
	approveNext(t, d, r)
	if code := r.exit(t, 20*time.Second); code != 0 {
		t.Fatalf("after revocation: exit %d:\n%s", code, r.stderr.String())
	}
}

func TestLoginDenied(t *testing.T) {
	d := identitytest.NewDeviceIssuer(t, "airlock")
	file := filepath.Join(t.TempDir(), "token")
	r := startLogin(t, "--issuer", d.URL(), "--token-file", file, "--once")
	code, err := d.NextUserCode(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d.Deny(code)
	if rc := r.exit(t, 20*time.Second); rc != 1 || !strings.Contains(r.stderr.String(), "denied") {
		t.Fatalf("exit %d:\n%s", rc, r.stderr.String())
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a denied login wrote a token file")
	}
}

func TestLoginRefusals(t *testing.T) {
	d := identitytest.NewDeviceIssuer(t, "airlock")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--issuer", "http://idp.acme.example"}, 1, "must be https"},
		{[]string{"--issuer", d.URL(), "--client-id", "stranger", "--once"}, 1, "invalid_client"},
		{[]string{"--issuer", d.URL() + "/other"}, 1, "discovery"},
		{[]string{}, 2, "usage: airlock login"},
	} {
		var stderr lockedBuffer
		args := append([]string{"login", "--token-file", filepath.Join(t.TempDir(), "t")}, tc.args...)
		if got := run(context.Background(), args, &lockedBuffer{}, &stderr); got != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, got, tc.code, tc.want, stderr.String())
		}
	}
}

func TestRefreshAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ left, want time.Duration }{
		{time.Hour, 48 * time.Minute},
		{5 * time.Second, 4 * time.Second},
		{-time.Second, 0},
	} {
		if got := identity.RefreshAt(now, now.Add(tc.left)).Sub(now); got != tc.want {
			t.Errorf("RefreshAt(%s left) = +%s, want +%s", tc.left, got, tc.want)
		}
	}
}
