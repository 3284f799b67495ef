package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/resources"
)

// console builds the approvers' and auditors' console at publicURL: sign-in
// with console.issuer (or the dev issuer of the local trial), sign-ins
// kept in the approvals Redis when there is one, sessions read from
// recorder.sink with every read recorded in the reader's own session.
func (s *server) console(ctx context.Context, bearer identity.Verifier, svc *approvals.Service, rec *recorder.Recorder, lookups resources.Backend, publicURL string) (*console.Console, error) {
	cfg := s.cfg
	o := console.Options{
		BaseURL: publicURL, Bearer: bearer, Approvals: svc,
		SessionTTL: cfg.Console.SessionTTL, Auditors: cfg.Console.Auditors,
		Logger: s.log.With("component", "console"),
	}
	if s.redis != nil {
		o.Store = console.NewRedisStore(s.redis)
	}
	verifierOptions := identity.Options{
		Leeway: cfg.Identity.Leeway, KeyRefreshInterval: cfg.Identity.KeyRefreshInterval,
		MaxTokenLifetime: cfg.Identity.MaxTokenLifetime, CacheSize: -1, Logger: s.log.With("component", "console-identity"),
	}
	redirect := strings.TrimRight(publicURL, "/") + "/auth/callback"
	switch is := cfg.ConsoleIssuer(); {
	case is != nil:
		secret, err := cfg.Console.ReadClientSecret()
		if err != nil {
			return nil, err
		}
		v, err := identity.NewOIDCVerifier(ctx, []identity.IssuerConfig{{
			Issuer: is.Issuer, Audience: cfg.Console.ClientID, GroupsClaim: is.GroupsClaim, JWKSURL: is.JWKSURL, TrustEmail: is.TrustEmail,
			AllowedSubjects: is.AllowedSubjects, AllowedEmailDomains: is.AllowedEmailDomains, AllowedHD: is.AllowedHD,
		}}, verifierOptions)
		if err != nil {
			return nil, fmt.Errorf("config: console.issuer: %w", err)
		}
		o.Issuer, o.ClientID, o.ClientSecret, o.IDTokens = is.Issuer, cfg.Console.ClientID, secret, v
		s.log.Info("console sign-in", "issuer", is.Issuer, "client_id", cfg.Console.ClientID, "redirect_uri", redirect)
	case s.dev != nil:
		s.dev.RegisterClient(cfg.Console.ClientID, "", redirect)
		v, err := identity.NewOIDCVerifier(ctx, nil, verifierOptions)
		if err != nil {
			return nil, err
		}
		dc := s.dev.ClientConfig(cfg.Console.ClientID)
		if err := v.AddStatic(dc, s.dev.Keys()); err != nil {
			return nil, err
		}
		o.Issuer, o.ClientID, o.IDTokens = dc.Issuer, cfg.Console.ClientID, v
		o.Endpoint = &oauth2.Endpoint{AuthURL: dc.Issuer + "/authorize", TokenURL: dc.Issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}
		s.log.Warn("DEV MODE: the console signs people in with the dev issuer: anyone on this host may sign in as anybody", "console", publicURL)
	}
	if rec != nil {
		sink, err := recorder.OpenSink(ctx, cfg.Recorder.Sink, recorder.SinkOptions{})
		if err != nil {
			return nil, fmt.Errorf("config: recorder.sink: %w", err)
		}
		o.Sessions = recorder.NewReader(sink)
		o.Verify = recorder.VerifyOptions{IdleGap: cfg.Recorder.IdleGap}
		if cfg.Recorder.SigningKey != "" {
			pub, err := recorder.LoadPublicKey(cfg.Recorder.SigningKey)
			if err != nil {
				return nil, fmt.Errorf("config: recorder.signing_key: %w", err)
			}
			o.Verify.PublicKey = pub
		}
		host := ""
		if u, err := url.Parse(publicURL); err == nil {
			host = u.Host
		}
		o.Audit = func(ctx context.Context, a console.Access) error { return rec.Decision(ctx, accessEvent(host, a)) }
	}
	return console.New(o)
}

// accessEvent is how a read of a session is recorded: a decision of the
// reader's own session, on the pseudo-methods airlock.sessions.get and
// airlock.sessions.export, so that `airlock sessions list --method
// airlock.sessions.get` finds who read what.
func accessEvent(host string, a console.Access) recorder.DecisionEvent {
	method, path, query := "airlock.sessions.get", "/sessions/"+a.Session, ""
	msg := "read session " + a.Session + " in the console"
	if a.Action == "export" {
		method, path, query = "airlock.sessions.export", "/v1/sessions/"+a.Session+"/download", "format="+a.Format
		msg = "downloaded session " + a.Session + " as " + a.Format
	}
	rule := "auditors"
	if a.Approval != "" {
		query = strings.TrimPrefix(query+"&approval="+a.Approval, "&")
		msg += " through approval " + a.Approval
		rule = "approvers"
	}
	v := a.Viewer
	return recorder.DecisionEvent{
		Time: a.Time, Subject: v.Subject, Email: v.Email, Actor: v.Actor, Issuer: v.Issuer,
		Method: "GET", Host: host, Path: path, Query: query,
		GCPMethod: method, Resource: "sessions/" + a.Session,
		Decision: recorder.DecisionAllowed, Policy: "console", Rule: rule, Message: msg,
		ApprovalID: a.Approval,
	}
}

// policyFetcher reads current IAM policies with the resource lookups, or
// nil when they are off.
func policyFetcher(lookups resources.Backend) console.FetchPolicy {
	if l, ok := lookups.(*resources.Lookup); ok {
		return l.IAMPolicy
	}
	return nil
}
