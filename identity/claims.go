package identity

import (
	"fmt"
	"maps"
	"sort"
	"strings"
)

// ClaimAt returns the value at path in claims, or nil. A path is a claim
// name, or names of nested objects joined by dots; since claim names may
// hold dots themselves (Kubernetes' "kubernetes.io"), at each level the
// longest run of segments that names a key is taken first:
// "kubernetes.io.serviceaccount.name" reads
// claims["kubernetes.io"]["serviceaccount"]["name"].
func ClaimAt(claims map[string]any, path string) any {
	if v, ok := claims[path]; ok {
		return v
	}
	return claimAt(claims, strings.Split(path, "."))
}

func claimAt(obj map[string]any, segs []string) any {
	for n := len(segs); n > 0; n-- {
		v, ok := obj[strings.Join(segs[:n], ".")]
		if !ok {
			continue
		}
		if n == len(segs) {
			return v
		}
		if inner, isObj := v.(map[string]any); isObj {
			if got := claimAt(inner, segs[n:]); got != nil {
				return got
			}
		}
	}
	return nil
}

// registeredClaims are the claims a token states about itself; an extra
// claim mapping may not take their names.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"act": true, "azp": true, "nonce": true, "auth_time": true, "email": true, "email_verified": true,
}

// CheckClaimNames validates the names of an extra claim mapping: each must
// be usable in CEL as identity.claims.NAME (a letter or underscore, then
// letters, digits or underscores), must not be a registered claim (iss,
// sub, aud, exp, nbf, iat, jti, act, azp, nonce, auth_time, email,
// email_verified), and must map to a non-empty path.
func CheckClaimNames(m map[string]string) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checkClaimName(name); err != nil {
			return fmt.Errorf("claims.%s: %w", name, err)
		}
		if p := m[name]; strings.TrimSpace(p) == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return fmt.Errorf("claims.%s: %q is not a claim path (names joined by dots, e.g. kubernetes.io.namespace)", name, p)
		}
	}
	return nil
}

func checkClaimName(name string) error {
	if name == "" {
		return fmt.Errorf("an empty name")
	}
	for i, r := range name {
		letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return fmt.Errorf("%q is not a CEL identifier (letters, digits and _, not starting with a digit)", name)
		}
	}
	if registeredClaims[name] {
		return fmt.Errorf("%q is a registered claim the token states itself; choose another name", name)
	}
	return nil
}

// mapClaims returns claims with each extra name set to the value at its
// path, or removed when the token has none there, so that
// identity.claims.NAME says exactly what the mapping says. claims itself is
// returned when there is no mapping.
func mapClaims(claims map[string]any, mapping map[string]string) map[string]any {
	if len(mapping) == 0 {
		return claims
	}
	out := maps.Clone(claims)
	for name, path := range mapping {
		if v := ClaimAt(claims, path); v != nil {
			out[name] = v
		} else {
			delete(out, name)
		}
	}
	return out
}
