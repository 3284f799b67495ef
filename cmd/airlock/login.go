package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlockhq/airlock/identity"
)

const loginUsage = `usage: airlock login --issuer URL [--client-id ID] [--token-file FILE] [--once]

Sign in at your company's OIDC issuer with the device flow (RFC 8628): open
the link printed, approve the code, and airlock writes your ID token to
--token-file, where gcloud (auth/access_token_file) and the client libraries
read it. The login keeps running and refreshes the token before it expires;
with --once it writes the token and exits (a later run refreshes it without
asking again while the issuer's refresh token is valid).

Exit status: 0 token written (with --once) or stopped by a signal, 1 the
sign-in failed, 2 usage error.
`

// defaultTokenFile is $XDG_CONFIG_HOME/airlock/token, else
// ~/.config/airlock/token.
func defaultTokenFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(".airlock", "token")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "airlock", "token")
}

func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("login", loginUsage, stderr)
	issuer := fl.String("issuer", os.Getenv("AIRLOCK_LOGIN_ISSUER"), "the OIDC issuer URL (default $AIRLOCK_LOGIN_ISSUER)")
	clientID := fl.String("client-id", envOr("AIRLOCK_LOGIN_CLIENT_ID", "airlock"), "the command-line client registered at the issuer; the ID token's audience (default $AIRLOCK_LOGIN_CLIENT_ID, else airlock)")
	secretFile := fl.String("client-secret-file", "", "a file holding the client secret, for issuers that give command-line clients one")
	scopes := fl.String("scopes", "openid,email,profile,offline_access", "comma-separated scopes; offline_access asks for the refresh token")
	tokenFile := fl.String("token-file", defaultTokenFile(), "where the token is written (mode 0600)")
	once := fl.Bool("once", false, "write the token and exit instead of keeping it fresh")
	pos, code, ok := parseFlags(fl, args, stdout)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "airlock login: unexpected argument %q\n", pos[0])
		return exitUsage
	case *issuer == "":
		fmt.Fprintln(stderr, "airlock login: no issuer: pass --issuer or set AIRLOCK_LOGIN_ISSUER")
		return exitUsage
	}
	l := &identity.DeviceLogin{Issuer: *issuer, ClientID: *clientID, Scopes: splitList(*scopes)}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			errorf(stderr, "login", "%v", err)
			return 2
		}
		l.ClientSecret = strings.TrimSpace(string(b))
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := l.Discover(dctx)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "airlock login:", termSafe(err.Error()))
		return 1
	}
	s := &loginSession{l: l, tokenFile: *tokenFile, stateFile: *tokenFile + ".state", stdout: stdout, stderr: stderr}
	exp, err := s.login(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintln(stderr, "airlock login:", termSafe(err.Error()))
		return 1
	}
	if *once {
		return 0
	}
	fmt.Fprintf(stderr, "Keeping %s fresh; press Ctrl-C to stop.\n", s.tokenFile)
	wait := time.Until(identity.RefreshAt(time.Now(), exp))
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(wait):
		}
		next, err := s.refresh(ctx)
		switch {
		case err == nil:
			exp = next
			wait = time.Until(identity.RefreshAt(time.Now(), exp))
		case ctx.Err() != nil:
			return 0
		case time.Now().Before(exp):
			// The token is still good: try again before it expires.
			wait = min(max(time.Until(exp)/2, time.Second), 30*time.Second)
			fmt.Fprintf(stderr, "airlock login: refresh failed, retrying in %s: %s\n", wait.Round(time.Second), termSafe(err.Error()))
		default:
			fmt.Fprintf(stderr, "airlock login: the token expired and could not be refreshed (%s); sign in again.\n", termSafe(err.Error()))
			if exp, err = s.deviceFlow(ctx); err != nil {
				if ctx.Err() != nil {
					return 0
				}
				fmt.Fprintln(stderr, "airlock login:", termSafe(err.Error()))
				return 1
			}
			wait = time.Until(identity.RefreshAt(time.Now(), exp))
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type loginSession struct {
	l                    *identity.DeviceLogin
	tokenFile, stateFile string
	stdout, stderr       io.Writer
}

// login refreshes a stored login of the same issuer and client when it
// can, else runs the device flow; it returns the token's expiry.
func (s *loginSession) login(ctx context.Context) (time.Time, error) {
	st, found, err := identity.LoadLoginState(s.stateFile)
	if err != nil {
		return time.Time{}, err
	}
	if found && st.Issuer == s.l.Issuer && st.ClientID == s.l.ClientID && st.RefreshToken != "" {
		if exp, err := s.refresh(ctx); err == nil {
			return exp, nil
		} else if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
	}
	return s.deviceFlow(ctx)
}

func (s *loginSession) deviceFlow(ctx context.Context) (time.Time, error) {
	dc, err := s.l.Start(ctx)
	if err != nil {
		return time.Time{}, err
	}
	fmt.Fprintf(s.stderr, "To sign in, open %s and enter the code %s\n", termSafe(dc.VerificationURI), termSafe(dc.UserCode))
	if dc.VerificationURIComplete != "" {
		fmt.Fprintf(s.stderr, "(or open %s)\n", termSafe(dc.VerificationURIComplete))
	}
	fmt.Fprintf(s.stderr, "Waiting for approval (the code is valid until %s)...\n", dc.Expires.Local().Format("15:04:05"))
	toks, err := s.l.Wait(ctx, dc)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.save(toks); err != nil {
		return time.Time{}, err
	}
	fmt.Fprintf(s.stderr, "Signed in as %s. The token is in %s until %s.\n", who(toks.IDToken), s.tokenFile, toks.Expiry.Local().Format(time.RFC3339))
	fmt.Fprintf(s.stderr, "gcloud: gcloud config set auth/access_token_file %s\n", s.tokenFile)
	return toks.Expiry, nil
}

func (s *loginSession) refresh(ctx context.Context) (time.Time, error) {
	st, found, err := identity.LoadLoginState(s.stateFile)
	if err != nil {
		return time.Time{}, err
	}
	if !found || st.RefreshToken == "" {
		return time.Time{}, errors.New("no refresh token: the issuer did not grant offline_access")
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	toks, err := s.l.Refresh(rctx, st.RefreshToken)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.save(toks); err != nil {
		return time.Time{}, err
	}
	fmt.Fprintf(s.stderr, "Token refreshed; valid until %s.\n", toks.Expiry.Local().Format(time.RFC3339))
	return toks.Expiry, nil
}

// save writes the state with the refresh token first, then the token
// file: once a client sees the new token, a later run can refresh it.
func (s *loginSession) save(toks *identity.LoginTokens) error {
	if toks.Expiry.IsZero() {
		return errors.New("the issuer's ID token has no exp")
	}
	st := identity.LoginState{Issuer: s.l.Issuer, ClientID: s.l.ClientID, RefreshToken: toks.RefreshToken, Expiry: toks.Expiry}
	if err := st.Save(s.stateFile); err != nil {
		return err
	}
	return identity.WriteTokenFile(s.tokenFile, toks.IDToken)
}

// who names the token's subject (and e-mail) for the person who signed
// in; the claims are read, not verified: airlock verifies the token.
func who(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "(unknown)"
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "(unknown)"
	}
	var c struct {
		Sub   string `json:"sub"`
		Email string `json:"email"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "(unknown)"
	}
	if c.Email != "" {
		return termSafe(c.Email) + " (" + termSafe(c.Sub) + ")"
	}
	return termSafe(c.Sub)
}
