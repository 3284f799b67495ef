// Package envoyhdr reads the headers Envoy sends its external services.
package envoyhdr

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Map reads a HeaderMap (raw values, as encode_raw_headers sends them, or
// string values): one entry per lower-cased name, repeated headers joined
// with "," as Envoy joins them for its own headers map.
func Map(hm *corev3.HeaderMap) map[string]string {
	out := make(map[string]string, len(hm.GetHeaders()))
	for _, hv := range hm.GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := string(hv.GetRawValue())
		if v == "" {
			v = hv.GetValue()
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}
