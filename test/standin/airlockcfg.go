package standin

import (
	"errors"
	"fmt"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
)

// AuthzAirlockConfig is the ext_authz configuration of the bootstrap that
// `airlock envoy config` renders for cfg: the body sent up to
// authz.max_body_bytes, cut with x-envoy-auth-partial-body rather than
// refused, as bytes; the timeout approvals.hold + authz.timeout + 1s; 503
// when airlock cannot answer. End-to-end tests use it so that they drive
// airlock exactly as the shipped Envoy does.
func AuthzAirlockConfig(cfg *config.Config) AuthzConfig {
	return AuthzConfig{
		WithRequestBody:     cfg.Authz.MaxBodyBytes > 0,
		MaxRequestBytes:     uint32(max(cfg.Authz.MaxBodyBytes, 0)),
		AllowPartialMessage: true,
		PackAsBytes:         true,
		Timeout:             envoy.ExtAuthzTimeout(cfg),
		StatusOnError:       envoy.ExtAuthzStatusOnError,
	}
}

// AirlockFrontConfig wires a Front as the bootstrap rendered for cfg wires
// Envoy: ext_authz on authzConn (AuthzAirlockConfig), ext_proc on
// extprocConn (nil leaves it out, as an empty listen.extproc does) with the
// shipped processing mode, masking.body_mode, message timeout and buffer
// limit, the credential credentials[0].name from creds (an SDSClient on
// airlock's listen.sds; nil leaves the injector out), the gateway domains,
// and every allowed request forwarded to upstream. With gateway domains,
// SERVICE.DOMAIN is rewritten by the Lua filter of the bootstrap
// `airlock envoy config` renders for cfg.
func AirlockFrontConfig(cfg *config.Config, authzConn, extprocConn grpc.ClientConnInterface, creds CredentialSource, upstream string) FrontConfig {
	fc := FrontConfig{
		Authz:          authv3.NewAuthorizationClient(authzConn),
		AuthzConfig:    AuthzAirlockConfig(cfg),
		GatewayDomains: cfg.Gateway.Domains,
		Upstream:       upstream,
	}
	if len(cfg.Gateway.Domains) > 0 {
		// The host rewrite runs the Lua of the bootstrap Envoy would run.
		bootstrap, err := envoy.Bootstrap(cfg)
		if err == nil {
			fc.GatewayLua, err = BootstrapLua(bootstrap)
		}
		if err == nil && fc.GatewayLua == "" {
			err = errors.New("standin: the rendered bootstrap has gateway domains but no Lua filter")
		}
		if err != nil {
			fc.setupErr = fmt.Errorf("standin: gateway domains: %w", err)
		}
	}
	if extprocConn != nil {
		ep := ExtProcAirlockConfig()
		ep.MessageTimeout = envoy.ExtProcMessageTimeout
		ep.BufferLimit = envoy.ListenerBufferLimit(cfg)
		if cfg.Masking.BodyMode == "buffered" {
			ep.ProcessingMode.ResponseBodyMode = filterv3.ProcessingMode_BUFFERED
		}
		fc.ExtProc = NewExtProcFilter(extprocConn, ep)
	}
	if creds != nil && len(cfg.Credentials) > 0 {
		fc.Credentials = creds
		fc.CredentialName = cfg.Credentials[0].Name
	}
	return fc
}
