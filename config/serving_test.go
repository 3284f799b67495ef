package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestServingKeysNameTheKey(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const dev = "identity: {dev: true}\n"
	tests := []parseError{
		{"sds on every interface", dev + "listen: {sds: 0.0.0.0:9003}\n", `config: listen.sds: "0.0.0.0:9003" binds 0.0.0.0: SDS hands out the GCP access token`},
		{"sds on an empty host", dev + "listen: {sds: \":9003\"}\n", `config: listen.sds: ":9003" binds every interface`},
		{"sds on a pod address", dev + "listen: {sds: 10.0.0.7:9003}\n", `config: listen.sds: "10.0.0.7:9003" binds 10.0.0.7`},
		{"sds on a host name", dev + "listen: {sds: airlock.internal:9003}\n", `config: listen.sds: "airlock.internal:9003" binds airlock.internal`},
		{"relative socket", dev + "listen: {sds: unix://run/sds.sock}\n", `config: listen.sds: "unix://run/sds.sock": want unix:///ABSOLUTE/PATH`},
		{"unclean socket", dev + "listen: {sds: unix:///run/../sds.sock}\n", `config: listen.sds: "unix:///run/../sds.sock": want unix:///ABSOLUTE/PATH`},
		{"long socket", dev + "listen: {sds: unix:///" + strings.Repeat("a", 120) + "}\n", "a socket path is at most 107 bytes"},
		{"half mTLS", dev + "listen: {sds: 0.0.0.0:9003}\nsds: {tls_cert: " + pem + ", tls_key: " + pem + "}\n", "config: sds.client_ca: sds.tls_cert, sds.tls_key and sds.client_ca go together"},
		{"missing cert file", dev + "listen: {sds: 0.0.0.0:9003}\nsds: {tls_cert: /no/cert.pem, tls_key: " + pem + ", client_ca: " + pem + "}\n", `config: sds.tls_cert: "/no/cert.pem": no such file or directory`},
		{"mTLS on a socket", dev + "listen: {sds: unix:///run/airlock/sds.sock}\nsds: {tls_cert: " + pem + ", tls_key: " + pem + ", client_ca: " + pem + "}\n", "config: sds.tls_cert: mTLS applies to a TCP listen.sds"},
		{"insecure on a socket", dev + "listen: {sds: unix:///run/airlock/sds.sock}\nsds: {allow_insecure_tcp: true}\n", "config: sds.allow_insecure_tcp: applies to a TCP listen.sds"},
		{"read timeout zero", dev + "http: {read_timeout: 0s}\n", "config: http.read_timeout: must be between 100ms and 30m0s, not 0s"},
		{"header timeout over read timeout", dev + "http: {read_header_timeout: 20s, read_timeout: 10s}\n", "config: http.read_header_timeout: must not exceed http.read_timeout (10s)"},
		{"write timeout", dev + "http: {write_timeout: -1s}\n", "config: http.write_timeout: must be between"},
		{"idle timeout", dev + "http: {idle_timeout: 2h}\n", "config: http.idle_timeout: must be between"},
		{"header bytes", dev + "http: {max_header_bytes: 100}\n", "config: http.max_header_bytes: must be between 4096 and 1048576, not 100"},
		{"body bytes", dev + "http: {max_body_bytes: 0}\n", "config: http.max_body_bytes: must be between 1024 and 67108864, not 0"},
		{"conns per source", dev + "http: {max_conns_per_source: -1}\n", "config: http.max_conns_per_source: must be between 0 (no cap) and 100000, not -1"},
		{"streams", dev + "grpc: {max_concurrent_streams: 1}\n", "config: grpc.max_concurrent_streams: must be at least 16, not 1"},
		{"keepalive min time", dev + "grpc: {keepalive_min_time: 0s}\n", "config: grpc.keepalive_min_time: must be between 1s and 1h0m0s"},
		{"keepalive time", dev + "grpc: {keepalive_time: 100ms}\n", "config: grpc.keepalive_time: must be between"},
		{"keepalive timeout", dev + "grpc: {keepalive_timeout: 0s}\n", "config: grpc.keepalive_timeout: must be between"},
		{"connection timeout", dev + "grpc: {connection_timeout: 0s}\n", "config: grpc.connection_timeout: must be between"},
		{"token lifetime", "identity: {dev: true, max_token_lifetime: 0s}\n", "config: identity.max_token_lifetime: must be between 1m and 744h, not 0s"},
		{"subject wildcard", "identity:\n  issuers: [{issuer: https://token.actions.githubusercontent.com, audience: a, allowed_subjects: ['*']}]\n", `config: identity.issuers[0].allowed_subjects[0]: "*" admits every subject`},
		{"inner wildcard", "identity:\n  issuers: [{issuer: https://token.actions.githubusercontent.com, audience: a, allowed_subjects: ['repo:*:ref']}]\n", `config: identity.issuers[0].allowed_subjects[0]: "repo:*:ref": only a trailing * is a wildcard`},
		{"email domain with @", "identity:\n  issuers: [{issuer: https://accounts.google.com, audience: a, allowed_email_domains: ['@example.com']}]\n", `config: identity.issuers[0].allowed_email_domains[0]: "@example.com" is not a domain name`},
		{"hd", "identity:\n  issuers: [{issuer: https://accounts.google.com, audience: a, allowed_hd: ['exa mple.com']}]\n", `config: identity.issuers[0].allowed_hd[0]: "exa mple.com" is not a domain name`},
		{"unknown http key", dev + "http: {read_timeot: 1s}\n", "config: http.read_timeot (line 2): unknown key"},
	}
	testParseErrors(t, tests)
}

func TestServingKeysAccepted(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const dev = "identity: {dev: true}\n"
	for _, y := range []string{
		dev + "listen: {sds: 127.0.0.1:9003}\n",
		dev + "listen: {sds: \"[::1]:9003\"}\n",
		dev + "listen: {sds: localhost:9003}\n",
		dev + "listen: {sds: unix:///run/airlock/sds.sock}\n",
		dev + "listen: {sds: \"\"}\n",
		dev + "listen: {sds: 0.0.0.0:9003}\nsds: {tls_cert: " + pem + ", tls_key: " + pem + ", client_ca: " + pem + "}\n",
		dev + "listen: {sds: 0.0.0.0:9003}\nsds: {allow_insecure_tcp: true}\n",
		dev + "http: {max_conns_per_source: 0}\n",
		"identity:\n  issuers: [{issuer: https://token.actions.githubusercontent.com, audience: a, allowed_subjects: ['repo:acme/infra:*']}]\n",
	} {
		if _, err := Parse([]byte(y)); err != nil {
			t.Errorf("Parse refused:\n%s\n%v", y, err)
		}
	}
	c, err := Parse([]byte(dev))
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity.MaxTokenLifetime != 24*time.Hour || c.HTTP != DefaultHTTP() || c.GRPC != DefaultGRPC() {
		t.Errorf("defaults lost: %s %+v %+v", c.Identity.MaxTokenLifetime, c.HTTP, c.GRPC)
	}
}

// TestServingKeysDocumented: every key of the http, grpc and sds sections
// and the new identity and envoy keys appear in airlock.example.yaml.
func TestServingKeysDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "airlock.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	keys := []string{"max_token_lifetime:", "allowed_subjects:", "allowed_email_domains:", "allowed_hd:",
		"sds_tls_cert:", "sds_tls_key:", "sds_ca:", "sds_server_name:"}
	for _, v := range []any{HTTP{}, GRPC{}, SDS{}} {
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			keys = append(keys, rt.Field(i).Tag.Get("yaml")+":")
		}
	}
	keys = append(keys, "\nhttp:", "\ngrpc:", "\nsds:")
	for _, k := range keys {
		if !strings.Contains(text, k) {
			t.Errorf("airlock.example.yaml does not document %s", strings.TrimSpace(k))
		}
	}
}
