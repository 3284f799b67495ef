package identity

import (
	"strings"
)

// BearerToken returns the token of the "authorization" header, whose scheme
// must be "Bearer" (in any case). headers holds lower-case header names, as
// Envoy sends them. It never looks at the query string or at any other header:
// a token is accepted from "Authorization: Bearer" only.
//
// A missing or empty header, or an empty token, is an *Error of kind NoToken;
// any other scheme (Basic, a bare token, ...) is an *Error of kind Malformed.
func BearerToken(headers map[string]string) (string, error) {
	v := strings.TrimSpace(headers["authorization"])
	if v == "" {
		return "", &Error{Kind: NoToken, Msg: `no token: send an "Authorization: Bearer <OIDC token>" header`}
	}
	scheme, token, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		if strings.EqualFold(v, "bearer") {
			return "", &Error{Kind: NoToken, Msg: `no token: the "Authorization: Bearer" header is empty`}
		}
		return "", &Error{Kind: Malformed, Msg: `the Authorization header must use the Bearer scheme: "Authorization: Bearer <OIDC token>"`}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", &Error{Kind: NoToken, Msg: `no token: the "Authorization: Bearer" header is empty`}
	}
	if strings.ContainsAny(token, " \t") {
		return "", &Error{Kind: Malformed, Msg: "the bearer token contains spaces; send exactly one token"}
	}
	return token, nil
}
