package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

func TestDeviceLoginDiscovery(t *testing.T) {
	var doc map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		doc  map[string]any
		want string
	}{
		{map[string]any{"issuer": "https://evil.example", "device_authorization_endpoint": srv.URL + "/d", "token_endpoint": srv.URL + "/t"}, `names issuer "https://evil.example"`},
		{map[string]any{"issuer": srv.URL, "token_endpoint": srv.URL + "/t"}, "offers no device authorization endpoint"},
		{map[string]any{"issuer": srv.URL, "device_authorization_endpoint": "http://idp.example/d", "token_endpoint": srv.URL + "/t"}, "must be https"},
	} {
		doc = tc.doc
		l := &identity.DeviceLogin{Issuer: srv.URL, ClientID: "airlock"}
		if err := l.Discover(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Discover with %v = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestDeviceLoginFlow(t *testing.T) {
	d := identitytest.NewDeviceIssuer(t, "airlock")
	l := &identity.DeviceLogin{Issuer: d.URL(), ClientID: "airlock"}
	if err := l.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	dc, err := l.Start(context.Background())
	if err != nil || dc.UserCode == "" || dc.Interval != time.Second {
		t.Fatalf("Start = %+v, %v", dc, err)
	}
	go func() {
		code, err := d.NextUserCode(5 * time.Second)
		if err == nil {
			_ = d.Approve(code, map[string]any{"sub": "alice"})
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	toks, err := l.Wait(ctx, dc)
	if err != nil || toks.IDToken == "" || toks.RefreshToken == "" || time.Until(toks.Expiry) < 50*time.Minute {
		t.Fatalf("Wait = %+v, %v", toks, err)
	}
	again, err := l.Refresh(ctx, toks.RefreshToken)
	if err != nil || again.IDToken == toks.IDToken {
		t.Fatalf("Refresh = %+v, %v", again, err)
	}
	if _, err := l.Refresh(ctx, toks.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("a spent refresh token: %v", err)
	}
}

func TestWriteTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "token")
	if err := identity.WriteTokenFile(p, "eyJ.x.y"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if err != nil || string(b) != "eyJ.x.y\n" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q %v %v", b, fi.Mode(), err)
	}
	if exp, ok := identity.TokenExpiry("e30.eyJleHAiOjE3MDAwMDAwMDB9.sig"); !ok || exp.Unix() != 1700000000 {
		t.Fatalf("TokenExpiry = %v %v", exp, ok)
	}
	if _, ok := identity.TokenExpiry("not a jwt"); ok {
		t.Fatal("TokenExpiry read a non-JWT")
	}
}
