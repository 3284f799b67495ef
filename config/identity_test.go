package config

import (
	"strings"
	"testing"
)

func TestIssuerKeysNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"google unrestricted", "identity:\n  issuers: [{issuer: https://accounts.google.com, audience: airlock}]\n",
			`config: identity.issuers[0]: anyone can obtain a token from https://accounts.google.com with audience "airlock"; restrict it with allowed_subjects, allowed_emails, allowed_email_domains or allowed_hd (or set allow_unrestricted: true`},
		{"github unrestricted", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a}, {issuer: https://token.actions.githubusercontent.com, audience: airlock}]\n",
			"config: identity.issuers[1]: anyone can obtain a token from https://token.actions.githubusercontent.com"},
		{"bad e-mail", "identity:\n  issuers: [{issuer: https://accounts.google.com, audience: a, allowed_emails: ['agent']}]\n",
			`config: identity.issuers[0].allowed_emails[0]: "agent" is not an e-mail address`},
		{"claim name", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, claims: {1ns: kubernetes.io.namespace}}]\n",
			`config: identity.issuers[0].claims.1ns: "1ns" is not a CEL identifier`},
		{"registered claim", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, claims: {sub: kubernetes.io.serviceaccount.name}}]\n",
			`config: identity.issuers[0].claims.sub: "sub" is a registered claim`},
		{"empty path", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, claims: {ns: ''}}]\n",
			`config: identity.issuers[0].claims.ns: "" is not a claim path`},
		{"subject path", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, subject_claim: 'a..b'}]\n",
			`config: identity.issuers[0].subject_claim: "a..b" is not a claim path`},
		{"claims must be a mapping", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, claims: [a]}]\n",
			"config: identity.issuers[0].claims (line 2): must be a mapping"},
		{"claim path must be a string", "identity:\n  issuers: [{issuer: https://idp.acme.example, audience: a, claims: {ns: [a]}}]\n",
			"config: identity.issuers[0].claims.ns (line 2): must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tc.want)
			}
		})
	}
}

func TestIssuerKeysAccepted(t *testing.T) {
	for _, y := range []string{
		"identity:\n  issuers: [{issuer: https://accounts.google.com, audience: airlock, allowed_emails: [agent@acme-prod.iam.gserviceaccount.com]}]\n",
		"identity:\n  issuers: [{issuer: https://accounts.google.com, audience: airlock, allow_unrestricted: true}]\n",
		"identity:\n  issuers: [{issuer: https://token.actions.githubusercontent.com, audience: airlock, allowed_subjects: ['repo:acme/*']}]\n",
		"identity:\n  issuers:\n    - issuer: https://container.googleapis.com/v1/projects/acme-prod/locations/us-east1/clusters/agents\n      audience: airlock\n      claims: {namespace: kubernetes.io.namespace, service_account: kubernetes.io.serviceaccount.name}\n",
		"identity:\n  issuers: [{issuer: https://login.microsoftonline.com/0f3a/v2.0, audience: api://airlock, subject_claim: oid, email_claim: preferred_username, groups_claim: roles}]\n",
	} {
		c, err := Parse([]byte(y))
		if err != nil {
			t.Errorf("%s: %v", y, err)
			continue
		}
		if strings.Contains(y, "kubernetes.io.namespace") && c.Identity.Issuers[0].Claims["namespace"] != "kubernetes.io.namespace" {
			t.Errorf("claims not read: %+v", c.Identity.Issuers[0])
		}
	}
}
