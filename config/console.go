package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Console configures the approvers' and auditors' web console, served on
// listen.http at approvals.public_url. People sign in with the OIDC
// authorization code flow (with PKCE) against Issuer; nobody handles a
// token.
type Console struct {
	// Issuer is the sign-in issuer: one of identity.issuers, whose
	// groups_claim, trust_email and allowed_* apply to the people signing
	// in. Its endpoints come from its discovery document. Empty: the dev
	// issuer with identity.dev, else no sign-in (the bearer-token API
	// stays).
	Issuer string `yaml:"issuer"`
	// ClientID is the console's OAuth client id at Issuer; ID tokens must
	// carry it as their audience.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret; empty for a public client
	// (PKCE only).
	ClientSecretFile string `yaml:"client_secret_file"`
	// Auditors may browse every session: group:NAME or user:EMAIL (a
	// verified e-mail only). Approvers see the sessions of the approvals
	// they may decide.
	Auditors []string `yaml:"auditors"`
	// SessionTTL is how long a sign-in lasts; then the person signs in again.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// DefaultConsole is the console's defaults: no issuer (sign-in off unless
// identity.dev), client id airlock-console, eight-hour sign-ins.
func DefaultConsole() Console {
	return Console{ClientID: "airlock-console", SessionTTL: 8 * time.Hour}
}

// ConsoleEnabled reports whether the console signs people in: an issuer
// is configured, or the dev issuer serves the local trial.
func (c *Config) ConsoleEnabled() bool {
	return c.Console.Issuer != "" || c.Identity.Dev
}

// ConsoleIssuer is the identity.issuers entry the console signs in with,
// or nil (dev mode, or no console).
func (c *Config) ConsoleIssuer() *Issuer {
	for i := range c.Identity.Issuers {
		if c.Identity.Issuers[i].Issuer == c.Console.Issuer {
			return &c.Identity.Issuers[i]
		}
	}
	return nil
}

// ReadClientSecret reads console.client_secret_file ("" when unset).
func (c Console) ReadClientSecret() (string, error) {
	if c.ClientSecretFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", &Error{Key: "console.client_secret_file", Msg: fmt.Sprintf("%q: %v", c.ClientSecretFile, errors.Unwrap(err))}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", &Error{Key: "console.client_secret_file", Msg: fmt.Sprintf("%q is empty", c.ClientSecretFile)}
	}
	return s, nil
}

// validateConsole checks the console.* keys and that the console's base
// URL (approvals.public_url) can carry a secure sign-in cookie.
func (c *Config) validateConsole() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	k := c.Console
	if k.Issuer != "" && c.ConsoleIssuer() == nil {
		names := make([]string, 0, len(c.Identity.Issuers))
		for _, is := range c.Identity.Issuers {
			names = append(names, is.Issuer)
		}
		bad("console.issuer", "%q is not one of identity.issuers (%s): people sign in with an issuer airlock already trusts", k.Issuer, strings.Join(names, ", "))
	}
	if c.ConsoleEnabled() && strings.TrimSpace(k.ClientID) == "" {
		bad("console.client_id", "is required: the console's OAuth client id at console.issuer")
	}
	if k.ClientSecretFile != "" {
		if _, err := k.ReadClientSecret(); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				errs = append(errs, ce)
			}
		}
	}
	for i, a := range k.Auditors {
		key := fmt.Sprintf("console.auditors[%d]", i)
		switch {
		case strings.HasPrefix(a, "group:") && len(a) > len("group:"):
		case strings.HasPrefix(a, "user:") && strings.Contains(a, "@"):
		default:
			bad(key, "%q must be group:NAME or user:EMAIL", a)
		}
	}
	if k.SessionTTL < 5*time.Minute || k.SessionTTL > 7*24*time.Hour {
		bad("console.session_ttl", "must be between 5m and 168h, not %s", k.SessionTTL)
	}
	if k.Issuer != "" && c.Approvals.PublicURL == "" && !loopbackAddr(c.Listen.HTTP) {
		bad("approvals.public_url", "is required with console.issuer: it is the console's base URL, and <public_url>/auth/callback the redirect URI registered at the issuer")
	}
	if c.ConsoleEnabled() && c.Approvals.PublicURL != "" {
		if u, err := url.Parse(c.Approvals.PublicURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			bad("approvals.public_url", "the console signs people in with a Secure cookie, so its base URL must be https (http only on loopback), not %q", c.Approvals.PublicURL)
		}
	}
	return errs
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
