package extauthz

import (
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeCheck reads what a Check uses of a CheckRequest straight from its
// wire bytes, without building the message: the protobuf runtime decodes
// the headers map through reflection, which cost more than the decision.
//
// It takes only the shape Envoy sends for an HTTP request: the fields it
// reads, each at most once (maps aside), with the wire types of the
// schema, every string valid UTF-8 (the metadata and TLS session Envoy
// adds are checked by the protobuf runtime alone). Anything else (a field
// it does not know, a repeated message that protobuf would merge,
// header_map, malformed bytes) answers ok false, and the caller
// decodes the whole message with the protobuf runtime instead; so whatever
// it accepts, the runtime decodes to the same request, and whatever the
// runtime refuses, it does not accept (FuzzDecodeCheck holds it to both).
func decodeCheck(b []byte) (f checkFields, ok bool) {
	var seen fieldSet
	for len(b) > 0 {
		num, v, n := consumeField(b, &seen, 0)
		if n < 0 || num != 1 { // CheckRequest.attributes
			return f, false
		}
		b = b[n:]
		if !f.attributes(v) {
			return f, false
		}
	}
	return f, true
}

// fieldSet notes the field numbers a message has shown, to turn a second
// occurrence of a singular field away.
type fieldSet uint64

// consumeField reads the next length-delimited field of b: its number,
// its value and the bytes it took; n < 0 when b does not start with a
// well-formed length-delimited field, or the field was seen before.
// mapField, when not zero, is the message's map field, which occurs once
// per entry.
func consumeField(b []byte, seen *fieldSet, mapField protowire.Number) (protowire.Number, []byte, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType || num >= 64 {
		return 0, nil, -1
	}
	if num != mapField {
		if *seen&(1<<num) != 0 {
			return 0, nil, -1
		}
		*seen |= 1 << num
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 {
		return 0, nil, -1
	}
	return num, v, n + m
}

// consumeVarintField reads the next varint field of b, as consumeField.
func consumeVarintField(b []byte, seen *fieldSet) (protowire.Number, uint64, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.VarintType || num >= 64 || *seen&(1<<num) != 0 {
		return 0, 0, -1
	}
	*seen |= 1 << num
	v, m := protowire.ConsumeVarint(b[n:])
	if m < 0 {
		return 0, 0, -1
	}
	return num, v, n + m
}

// fieldType is the wire type of the next field of b (ok false when b does
// not start with a tag).
func fieldType(b []byte) (protowire.Type, bool) {
	_, typ, n := protowire.ConsumeTag(b)
	return typ, n > 0
}

// str is a proto3 string field's value, which must be valid UTF-8.
func str(v []byte) (string, bool) {
	if s, ok := common[string(v)]; ok {
		return s, true
	}
	if !utf8.Valid(v) {
		return "", false
	}
	return string(v), true
}

// common are the header names and values most requests carry, handed out
// without a copy each (the lookup with string(v) does not allocate).
var common = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		":authority", ":method", ":path", ":scheme", "accept", "accept-encoding", "authorization",
		"content-length", "content-type", "user-agent", "x-request-id", "x-forwarded-proto",
		"x-forwarded-for", "x-envoy-internal", "x-envoy-expected-rq-timeout-ms", "x-envoy-auth-partial-body",
		"x-goog-api-client", "x-goog-user-project", "x-goog-request-params", "x-airlock-session",
		"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "http", "https", "true", "false",
		"application/json", "gzip, deflate", "gzip, deflate, br", "HTTP/1.1", "HTTP/2",
	} {
		m[s] = s
	}
	return m
}()

// attributes reads an AttributeContext: source and request, and checks
// what Envoy sends beside them.
func (f *checkFields) attributes(b []byte) bool {
	var seen fieldSet
	for len(b) > 0 {
		num, v, n := consumeField(b, &seen, 10) // context_extensions: a map
		if n < 0 {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1: // source
			f.source, ok = peerAddress(v)
		case 2: // destination: checked, not used
			_, ok = peerAddress(v)
		case 4: // request
			ok = f.attrRequest(v)
		case 10: // context_extensions: checked, not used
			_, _, ok = mapEntry(v)
		case 11, 13: // metadata_context, route_metadata_context
			// Envoy sets both on every request, empty unless namespaces
			// are configured; content is checked by the runtime.
			ok = len(v) == 0 || proto.Unmarshal(v, &corev3.Metadata{}) == nil
		case 12: // tls_session
			ok = len(v) == 0 || proto.Unmarshal(v, &authv3.AttributeContext_TLSSession{}) == nil
		}
		if !ok {
			return false
		}
	}
	return true
}

// peerAddress reads an AttributeContext.Peer: the socket address's host,
// its other string fields checked.
func peerAddress(b []byte) (addr string, ok bool) {
	var seen fieldSet
	for len(b) > 0 {
		num, v, n := consumeField(b, &seen, 3)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		switch num {
		case 1: // address
			addr, ok = socketAddress(v)
		case 2, 4, 5: // service, principal, certificate
			ok = utf8.Valid(v)
		case 3: // labels
			_, _, ok = mapEntry(v)
		default:
			ok = false
		}
		if !ok {
			return "", false
		}
	}
	return addr, true
}

// socketAddress reads an envoy.config.core.v3.Address holding a
// SocketAddress, and answers its address. A pipe or an internal address
// is left to the protobuf runtime.
func socketAddress(b []byte) (string, bool) {
	var seen fieldSet
	num, v, n := consumeField(b, &seen, 0)
	if n < 0 || num != 1 || n != len(b) { // Address.socket_address, alone
		return "", false
	}
	var addr string
	seen = 0
	for len(v) > 0 {
		typ, ok := fieldType(v)
		if !ok {
			return "", false
		}
		if typ == protowire.VarintType {
			num, _, n := consumeVarintField(v, &seen)
			// protocol, port_value, ipv4_compat
			if n < 0 || num != 1 && num != 3 && num != 6 {
				return "", false
			}
			v = v[n:]
			continue
		}
		num, val, n := consumeField(v, &seen, 0)
		if n < 0 {
			return "", false
		}
		v = v[n:]
		switch num {
		case 2: // address
			if addr, ok = str(val); !ok {
				return "", false
			}
		case 4, 5: // named_port, resolver_name
			if !utf8.Valid(val) {
				return "", false
			}
		default:
			return "", false
		}
	}
	return addr, true
}

// attrRequest reads an AttributeContext.Request: time and http.
func (f *checkFields) attrRequest(b []byte) bool {
	var seen fieldSet
	for len(b) > 0 {
		num, v, n := consumeField(b, &seen, 0)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case 1: // time
			t, ok := timestamp(v)
			if !ok {
				return false
			}
			f.time = t
		case 2: // http
			if !f.http(v) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// timestamp reads a google.protobuf.Timestamp as AsTime does.
func timestamp(b []byte) (time.Time, bool) {
	var seen fieldSet
	var sec, nsec uint64
	for len(b) > 0 {
		num, v, n := consumeVarintField(b, &seen)
		if n < 0 {
			return time.Time{}, false
		}
		b = b[n:]
		switch num {
		case 1:
			sec = v
		case 2:
			nsec = v
		default:
			return time.Time{}, false
		}
	}
	return time.Unix(int64(sec), int64(int32(nsec))).UTC(), true
}

// http reads an AttributeContext.HttpRequest.
func (f *checkFields) http(b []byte) bool {
	var seen fieldSet
	for len(b) > 0 {
		typ, ok := fieldType(b)
		if !ok {
			return false
		}
		if typ == protowire.VarintType {
			num, _, n := consumeVarintField(b, &seen)
			if n < 0 || num != 9 { // size
				return false
			}
			b = b[n:]
			continue
		}
		num, v, n := consumeField(b, &seen, 3) // headers: a map
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case 3:
			k, val, ok := mapEntry(v)
			if !ok {
				return false
			}
			if f.headers == nil {
				f.headers = make(map[string]string, 16)
			}
			f.headers[k] = val
		case 2:
			f.method, ok = str(v)
		case 4:
			f.path, ok = str(v)
		case 5:
			f.host, ok = str(v)
		case 11:
			f.body, ok = str(v)
		case 12:
			f.rawBody = append([]byte{}, v...)
		case 1, 6, 7, 8, 10: // id, scheme, query, fragment, protocol
			ok = utf8.Valid(v)
		default: // header_map and what this does not know
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

// mapEntry reads one entry of a map<string, string>: absent key or value
// are "", and a repeated one is left to the protobuf runtime.
func mapEntry(b []byte) (key, val string, ok bool) {
	var seen fieldSet
	for len(b) > 0 {
		num, v, n := consumeField(b, &seen, 0)
		if n < 0 {
			return "", "", false
		}
		b = b[n:]
		switch num {
		case 1:
			if key, ok = str(v); !ok {
				return "", "", false
			}
		case 2:
			if val, ok = str(v); !ok {
				return "", "", false
			}
		default:
			return "", "", false
		}
	}
	return key, val, true
}
