// Package envoy holds airlock's Envoy side: the bootstrap configuration
// rendered from airlock.yaml (`airlock envoy config`), the validation of
// Envoy configurations against Envoy's own protos, and the SDS server that
// hands Envoy's credential injector the GCP access token.
//
// # Bootstrap
//
// Bootstrap renders one listener whose HTTP filter chain is, in order:
//
//  1. ext_authz (gRPC to listen.authz): identity, policy, approvals.
//     failure_mode_allow false, status_on_error 503, timeout
//     approvals.hold + authz.timeout + 1s, request bodies up to
//     authz.max_body_bytes sent as bytes, a larger body sent cut with
//     x-envoy-auth-partial-body: true (allow_partial_message) so that airlock
//     can refuse a batch it did not see whole.
//  2. ext_proc (gRPC to listen.extproc): masking and recording. Request and
//     response headers are sent, response bodies STREAMED (or BUFFERED with
//     masking.body_mode), mode override allowed, the ext_authz metadata
//     forwarded. It stands before the credential injector, so on the request
//     path it never sees the injected token, and on the response path it
//     masks last.
//  3. credential_injector: Authorization set (overwritten) from the SDS
//     generic secret named credentials[0].name; no credential, no request.
//  4. lua, only with gateway.domains: SERVICE.DOMAIN becomes
//     SERVICE.googleapis.com; a deeper name is refused.
//  5. dynamic_forward_proxy and router: the googleapis cluster resolves the
//     Google host on demand and opens TLS to it with SNI and certificate
//     checked against the host. Only *.googleapis.com and the gateway
//     domains have routes.
//
// airlock's three gRPC services are HTTP/2 clusters on envoy.airlock_host,
// health-checked with grpc.health.v1. The SDS cluster is a static pipe
// address when listen.sds is a Unix socket (unix:///PATH), and carries an
// UpstreamTlsContext (Envoy's client certificate envoy.sds_tls_cert and
// envoy.sds_tls_key, airlock's CA envoy.sds_ca, the name
// envoy.sds_server_name, ALPN h2) when airlock requires mTLS (sds.tls_cert).
//
// # Validation
//
// ValidateBootstrap and ValidateYAML load YAML into the Envoy protos with
// protojson, unknown fields refused, every typed_config resolved among the
// extension types this package registers, and run the protoc-gen-validate
// rules of every message, those packed in typed_configs included.
//
// # SDS
//
// SDSServer serves, per configured credential, a generic_secret whose value
// is the whole header value "Bearer <access token>". Tokens are minted from
// a service-account key (the JWT-bearer exchange at the key's token_uri) or
// Application Default Credentials, refreshed before expiry and pushed to
// every connected Envoy as a new version. When the token endpoint fails the
// still-valid token stays served; Healthy reports the failure once the token
// is about to expire. Tokens are never logged.
//
// Whoever reaches the SDS listener gets the credential, so ListenSDS binds a
// Unix socket of mode SDSSocketMode for unix:///PATH, and SDSServerTLS is
// the listener's mTLS configuration (client certificates required, files
// re-read when they rotate); configuration refuses any other TCP address
// off loopback unless sds.allow_insecure_tcp says the network guards it.
package envoy
