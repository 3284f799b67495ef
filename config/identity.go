package config

import (
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/identity"
)

// validateIssuers checks the claim mapping and restriction keys of
// identity.issuers[]: a public issuer (anyone can obtain its tokens) needs
// an allowed_* list or allow_unrestricted: true.
func (c *Config) validateIssuers() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for i, is := range c.Identity.Issuers {
		key := fmt.Sprintf("identity.issuers[%d]", i)
		ic := identity.IssuerConfig{Issuer: is.Issuer, Audience: is.Audience, AllowedSubjects: is.AllowedSubjects,
			AllowedEmails: is.AllowedEmails, AllowedEmailDomains: is.AllowedEmailDomains, AllowedHD: is.AllowedHD}
		if err := ic.CheckPublic(); err != nil && !is.AllowUnrestricted {
			bad(key, "%v", err)
		}
		for j, e := range is.AllowedEmails {
			local, domain, ok := strings.Cut(e, "@")
			if !ok || local == "" || !validHostname(domain) || strings.ContainsAny(local, " @*") {
				bad(fmt.Sprintf("%s.allowed_emails[%d]", key, j), "%q is not an e-mail address", e)
			}
		}
		for _, k := range []struct{ name, v string }{{"subject_claim", is.SubjectClaim}, {"email_claim", is.EmailClaim}, {"groups_claim", is.GroupsClaim}} {
			if k.v != "" && (strings.TrimSpace(k.v) != k.v || strings.HasPrefix(k.v, ".") || strings.HasSuffix(k.v, ".") || strings.Contains(k.v, "..")) {
				bad(key+"."+k.name, "%q is not a claim path (names joined by dots, e.g. realm_access.roles)", k.v)
			}
		}
		for name, path := range is.Claims {
			if err := identity.CheckClaimNames(map[string]string{name: path}); err != nil {
				_, msg, _ := strings.Cut(err.Error(), ": ")
				bad(fmt.Sprintf("%s.claims.%s", key, name), "%s", msg)
			}
		}
	}
	return errs
}
