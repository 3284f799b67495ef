// Package envoytest holds test helpers for the SDS credential server: a fake
// OAuth token endpoint that performs a real JWT-bearer exchange, verifying
// the assertion's signature, and service-account key files pointing at it.
package envoytest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenServer is a fake Google OAuth token endpoint for one service account.
type TokenServer struct {
	// URL is the token endpoint (the key's token_uri).
	URL string
	// Email is the service account's client_email.
	Email string
	// KeyFile is the path of the service-account JSON key.
	KeyFile string

	key *rsa.PrivateKey
	srv *httptest.Server

	mu        sync.Mutex
	issued    []string
	fail      bool
	expiresIn int
	scopes    []string
	rejected  []string
}

// NewTokenServer starts the endpoint, generates an RSA key and writes a
// service-account JSON key file whose token_uri points at the endpoint into a
// temporary directory. Tokens are "token-1", "token-2", ... valid for
// expiresIn.
func NewTokenServer(t testing.TB, expiresIn time.Duration) *TokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts := &TokenServer{key: key, Email: "airlock-test@example-project.iam.gserviceaccount.com", expiresIn: int(expiresIn.Seconds())}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	ts.URL = ts.srv.URL + "/token"

	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "example-project",
		"private_key_id": "key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   ts.Email,
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      ts.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.KeyFile = filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(ts.KeyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts
}

// SetFailing makes the endpoint answer 503 (true) or issue tokens (false).
func (ts *TokenServer) SetFailing(fail bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.fail = fail
}

// Issued returns the access tokens issued so far.
func (ts *TokenServer) Issued() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// Rejected returns why assertions were refused so far.
func (ts *TokenServer) Rejected() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.rejected...)
}

// Scopes returns the scope claim of each accepted assertion.
func (ts *TokenServer) Scopes() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.scopes...)
}

func (ts *TokenServer) reject(w http.ResponseWriter, why string) {
	ts.mu.Lock()
	ts.rejected = append(ts.rejected, why)
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": why})
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	fail := ts.fail
	ts.mu.Unlock()
	if fail {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		ts.reject(w, "bad form: "+err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		ts.reject(w, "grant_type "+g)
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		ts.reject(w, "assertion: "+err.Error())
		return
	}
	var claims jwt.Claims
	var extra struct {
		Scope string `json:"scope"`
	}
	if err := tok.Claims(&ts.key.PublicKey, &claims, &extra); err != nil {
		ts.reject(w, "assertion signature: "+err.Error())
		return
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      ts.Email,
		AnyAudience: jwt.Audience{ts.URL},
		Time:        time.Now(),
	}, time.Minute); err != nil {
		ts.reject(w, "assertion claims: "+err.Error())
		return
	}
	if extra.Scope == "" {
		ts.reject(w, "assertion has no scope")
		return
	}
	ts.mu.Lock()
	access := fmt.Sprintf("token-%d", len(ts.issued)+1)
	ts.issued = append(ts.issued, access)
	ts.scopes = append(ts.scopes, extra.Scope)
	expiresIn := ts.expiresIn
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   expiresIn,
	})
}
