package envoy

import (
	"encoding/json"
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	// Every extension the shipped configurations name, so that each
	// typed_config resolves to its registered type.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/injected_credentials/generic/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// validator is implemented by every generated Envoy message
// (protoc-gen-validate).
type validator interface{ ValidateAll() error }

// ValidateBootstrap checks an Envoy bootstrap in YAML or JSON against
// Envoy's own protos: unknown fields are errors, every typed_config must
// resolve to a registered extension type, and the protoc-gen-validate rules
// of every message, those inside typed_configs included, must hold.
func ValidateBootstrap(data []byte) error {
	return ValidateYAML(data, &bootstrapv3.Bootstrap{})
}

// ValidateYAML reads data (YAML or JSON) into msg with protojson, unknown
// fields refused, then validates msg and every Any inside it.
func ValidateYAML(data []byte, msg proto.Message) error {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("envoy: validate: YAML: %w", err)
	}
	return ValidateValue(doc, msg)
}

// ValidateValue is ValidateYAML for an already decoded YAML value (as in an
// Istio EnvoyFilter patch's value).
func ValidateValue(doc any, msg proto.Message) error {
	js, err := json.Marshal(jsonable(doc))
	if err != nil {
		return fmt.Errorf("envoy: validate: to JSON: %w", err)
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(js, msg); err != nil {
		return fmt.Errorf("envoy: validate: %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	if err := validateDeep(msg.ProtoReflect(), string(msg.ProtoReflect().Descriptor().FullName()), true); err != nil {
		return fmt.Errorf("envoy: validate: %w", err)
	}
	return nil
}

// jsonable turns yaml.v3's decoded values into values encoding/json accepts
// (map[any]any can appear under non-string keys).
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonable(e)
		}
		return out
	default:
		return v
	}
}

// validateDeep runs ValidateAll on a root message (the document, or the
// content of an Any: PGV checks an Any's type URL, not what it holds), then
// walks every field to do the same for each Any inside.
func validateDeep(m protoreflect.Message, path string, root bool) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return validateDeep(inner.ProtoReflect(), path+"("+string(inner.ProtoReflect().Descriptor().FullName())+")", true)
	}
	if v, ok := m.Interface().(validator); ok && root {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					errs = append(errs, validateDeep(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()), false))
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					errs = append(errs, validateDeep(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), false))
				}
			}
		case fd.Message() != nil:
			errs = append(errs, validateDeep(v.Message(), name, false))
		}
		return true
	})
	return errors.Join(errs...)
}
