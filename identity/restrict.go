package identity

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultMaxTokenLifetime is the longest token lifetime accepted when
// Options.MaxTokenLifetime is not set.
const DefaultMaxTokenLifetime = 24 * time.Hour

// checkLifetime refuses a token that lives longer than v.lifetime: exp - iat
// when the token has an iat, else exp - now. A long-lived token is a stolen
// token's best friend, and an ancient iat with a far exp says the issuer
// does not bound its tokens.
func (v *OIDCVerifier) checkLifetime(iat, exp, now time.Time) error {
	if !iat.IsZero() {
		if life := exp.Sub(iat); life > v.lifetime {
			return &Error{Kind: LifetimeTooLong, Msg: fmt.Sprintf("the token lives %s (iat %s, exp %s), longer than the %s this gateway accepts; get a shorter-lived token",
				roundLife(life), iat.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339), roundLife(v.lifetime))}
		}
		return nil
	}
	if left := exp.Sub(now); left > v.lifetime+v.leeway {
		return &Error{Kind: LifetimeTooLong, Msg: fmt.Sprintf("the token has no iat and expires in %s, later than the %s this gateway accepts; get a shorter-lived token",
			roundLife(left), roundLife(v.lifetime))}
	}
	return nil
}

func roundLife(d time.Duration) string {
	if d > time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// restriction says which of an issuer's tokens are admitted: a token
// matching any of the lists set (its subject, its verified e-mail, its
// verified e-mail's domain, its Workspace domain). With no list set every
// token of the issuer is.
type restriction struct {
	subjects       map[string]bool
	subjectPrefix  []string
	emails         map[string]bool
	emailDomains   map[string]bool
	hostedDomains  map[string]bool
	hasRestriction bool
}

func newRestriction(ic IssuerConfig) restriction {
	r := restriction{subjects: map[string]bool{}, emails: map[string]bool{}, emailDomains: map[string]bool{}, hostedDomains: map[string]bool{}}
	for _, e := range ic.AllowedEmails {
		r.emails[strings.ToLower(e)] = true
	}
	for _, s := range ic.AllowedSubjects {
		if p, ok := strings.CutSuffix(s, "*"); ok {
			r.subjectPrefix = append(r.subjectPrefix, p)
		} else {
			r.subjects[s] = true
		}
	}
	for _, d := range ic.AllowedEmailDomains {
		r.emailDomains[strings.ToLower(strings.TrimSuffix(d, "."))] = true
	}
	for _, d := range ic.AllowedHD {
		r.hostedDomains[strings.ToLower(strings.TrimSuffix(d, "."))] = true
	}
	r.hasRestriction = ic.Restricted()
	return r
}

// checkRestriction refuses restriction entries that would admit everyone
// or nothing by mistake.
func checkRestriction(ic IssuerConfig) error {
	for _, s := range ic.AllowedSubjects {
		p, _ := strings.CutSuffix(s, "*")
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("allowed_subjects: %q admits every subject", s)
		}
		if strings.Contains(p, "*") {
			return fmt.Errorf("allowed_subjects: %q: only a trailing * is a wildcard", s)
		}
	}
	for _, e := range ic.AllowedEmails {
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(e, " *") || strings.Count(e, "@") != 1 {
			return fmt.Errorf("allowed_emails: %q is not an e-mail address", e)
		}
	}
	for _, d := range append(append([]string(nil), ic.AllowedEmailDomains...), ic.AllowedHD...) {
		if strings.TrimSpace(d) == "" || strings.ContainsAny(d, "@ *") {
			return fmt.Errorf("allowed domain %q is not a domain name", d)
		}
	}
	return nil
}

// admit returns nil when the verified identity is within the restriction,
// else a NotAllowed *Error saying what was checked.
func (r restriction) admit(id Identity, claims map[string]any, issuer string) error {
	if !r.hasRestriction {
		return nil
	}
	if r.subjects[id.Subject] {
		return nil
	}
	for _, p := range r.subjectPrefix {
		if strings.HasPrefix(id.Subject, p) {
			return nil
		}
	}
	if len(r.emails) > 0 && id.EmailVerified && r.emails[strings.ToLower(id.Email)] {
		return nil
	}
	if len(r.emailDomains) > 0 && id.EmailVerified {
		if _, domain, ok := strings.Cut(id.Email, "@"); ok && r.emailDomains[strings.ToLower(domain)] {
			return nil
		}
	}
	hd, _ := claims["hd"].(string)
	if len(r.hostedDomains) > 0 && hd != "" && r.hostedDomains[strings.ToLower(hd)] {
		return nil
	}
	var tried []string
	if len(r.subjects)+len(r.subjectPrefix) > 0 {
		tried = append(tried, "its subject "+quote(id.Subject)+" is not an allowed subject")
	}
	if len(r.emails)+len(r.emailDomains) > 0 {
		switch {
		case id.Email == "":
			tried = append(tried, "it has no e-mail")
		case !id.EmailVerified:
			tried = append(tried, "its e-mail "+quote(id.Email)+" is not verified")
		default:
			switch {
			case len(r.emails) == 0:
				tried = append(tried, "its e-mail "+quote(id.Email)+" is not in an allowed domain")
			case len(r.emailDomains) == 0:
				tried = append(tried, "its e-mail "+quote(id.Email)+" is not an allowed e-mail")
			default:
				tried = append(tried, "its e-mail "+quote(id.Email)+" is neither an allowed e-mail nor in an allowed domain")
			}
		}
	}
	if len(r.hostedDomains) > 0 {
		if hd == "" {
			tried = append(tried, "it has no hd (Google Workspace domain) claim")
		} else {
			tried = append(tried, "its Workspace domain "+quote(hd)+" is not allowed")
		}
	}
	return &Error{Kind: NotAllowed, Msg: fmt.Sprintf("the token is valid but issuer %s admits only listed identities here, and %s",
		quote(issuer), strings.Join(tried, "; "))}
}

// publicIssuerHosts are issuers whose tokens anyone can obtain: any Google
// account, any GitHub repository's workflow, any GitLab project.
var publicIssuerHosts = map[string]bool{
	"accounts.google.com":                 true,
	"token.actions.githubusercontent.com": true,
	"gitlab.com":                          true,
}

// multiTenantSegments name, in an issuer's path, an endpoint that serves
// every tenant (Microsoft Entra's common, organizations and consumers).
var multiTenantSegments = map[string]bool{"common": true, "organizations": true, "consumers": true}

// PublicIssuer reports whether anyone can obtain a token from issuer:
// accounts.google.com, token.actions.githubusercontent.com, gitlab.com and
// issuers whose URL says they are multi-tenant. Such an issuer is safe only
// with allowed_subjects, allowed_emails, allowed_email_domains or
// allowed_hd.
func PublicIssuer(issuer string) bool {
	if issuer == "accounts.google.com" {
		return true
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if publicIssuerHosts[host] {
		return true
	}
	lower := strings.ToLower(issuer)
	if strings.Contains(lower, "multitenant") || strings.Contains(lower, "multi-tenant") {
		return true
	}
	for seg := range strings.SplitSeq(strings.ToLower(u.Path), "/") {
		if multiTenantSegments[seg] {
			return true
		}
	}
	return false
}

// Restricted reports whether ic limits who may present its tokens.
func (ic IssuerConfig) Restricted() bool {
	return len(ic.AllowedSubjects)+len(ic.AllowedEmails)+len(ic.AllowedEmailDomains)+len(ic.AllowedHD) > 0
}

// CheckPublic returns an error for a public issuer configured without any
// restriction, naming the keys that would restrict it; nil otherwise.
func (ic IssuerConfig) CheckPublic() error {
	if !PublicIssuer(ic.Issuer) || ic.Restricted() {
		return nil
	}
	return fmt.Errorf("anyone can obtain a token from %s with audience %q; restrict it with allowed_subjects, allowed_emails, allowed_email_domains or allowed_hd (or set allow_unrestricted: true to trust every such token)",
		ic.Issuer, ic.Audience)
}
