package gcp

import "strings"

// Query parameters that change what the gateway would inspect. Google's
// system parameters apply to every API, spelt with or without "$" and
// percent-encoded or not (ParseQuery decodes %24alt to $alt):
//
//   - alt / $alt picks the response format. Only json (the default) and
//     media (a download) pass; proto returns binary protobuf and sse a
//     stream of events, which masking would read as text, so any other
//     value is refused.
//   - callback / $callback wraps a JSON response in a JSONP function call,
//     which masking cannot read as JSON: refused.
//   - access_token and oauth_token carry an OAuth token. The gateway
//     removes them by name (ext_authz query_parameters_to_remove), and
//     Envoy matches names as sent, so an escaped spelling (%61ccess_token)
//     or a "$" spelling would reach Google: refused.
//
// compute.instances.getSerialPortOutput takes start, the first byte of the
// serial output to return; a slice that starts past the "-----BEGIN" line
// of a private key hides the key from the masking detectors, so any start
// but 0 (the whole buffer) is refused. Ranges of media downloads (the Range
// and If-Range headers) are removed from allowed requests instead: a full
// answer is a legal answer to a range request.

// credentialParams are the query parameters that carry an OAuth token.
var credentialParams = [...]string{"access_token", "oauth_token"}

// checkQuery refuses system parameters the gateway cannot honour. raw is
// the query as sent, q the same query decoded.
func checkQuery(q map[string][]string, raw string) error {
	if len(q) == 0 {
		return nil
	}
	alt := ""
	for _, k := range [...]string{"alt", "$alt"} {
		for _, v := range q[k] {
			if v != "json" && v != "media" {
				return refusef("%s=%s asks for a response format that airlock cannot inspect; use alt=json (the default), or alt=media for a media download", k, clip(v))
			}
			if alt != "" && v != alt {
				return refusef("the response format is given twice (alt=%s and alt=%s); give alt once", alt, v)
			}
			alt = v
		}
	}
	for _, k := range [...]string{"callback", "$callback"} {
		if _, ok := q[k]; ok {
			return refusef("the %s parameter wraps the response in a JSONP call, which airlock cannot inspect as JSON; remove it", k)
		}
	}
	for _, name := range credentialParams {
		if _, ok := q["$"+name]; ok {
			return refusef("the $%s parameter carries a credential that the gateway would not remove; send credentials only in the Authorization header", name)
		}
	}
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return nil
	}
	for _, pair := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if strings.IndexByte(k, '%') < 0 && strings.IndexByte(k, '+') < 0 {
			continue
		}
		key, err := unescapeQuery(k, raw)
		if err != nil {
			return err
		}
		for _, name := range credentialParams {
			if key == name {
				return refusef("the query parameter %q spells %s with escapes, which the gateway would not remove; send credentials only in the Authorization header", clip(k), name)
			}
		}
	}
	return nil
}

// checkSlice refuses a request for a slice of a secret-bearing stream.
func checkSlice(out Recognized) error {
	if out.Operation.Method != "compute.instances.getSerialPortOutput" {
		return nil
	}
	if v, ok := out.Query["start"]; ok && (len(v) != 1 || v[0] != "0") {
		return refusef("compute.instances.getSerialPortOutput with start=%s returns a slice of the serial output, which can cut a secret away from the marker that masking needs to find it; omit start to read the whole buffer", clip(strings.Join(v, ",")))
	}
	return nil
}
