package extproc

import (
	"fmt"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/airlockhq/airlock/internal/protomsg"
)

// protoCodec is gRPC's protobuf codec with buffers from dirtyPool (see
// GRPCServerOptions). It decodes a *request without copying a response body
// chunk out of the buffer the message was read into.
type protoCodec struct{}

var _ encoding.CodecV2 = protoCodec{}

// Name is the content subtype of gRPC's own protobuf codec.
func (protoCodec) Name() string { return "proto" }

// Marshal encodes v into a buffer of dirtyPool (gRPC's codec uses its
// default pool, which clears the buffer first).
func (protoCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*bodyReply); ok {
		return r.marshal()
	}
	m := protomsg.Of(v)
	if m == nil {
		return nil, fmt.Errorf("extproc: cannot marshal %T: not a proto message", v)
	}
	size := proto.Size(m)
	// UseCachedSize is safe right after Size on a message nobody mutates.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := dirtyPool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		dirtyPool.Put(buf)
		return nil, err
	}
	if len(b) != size || &b[0] != &(*buf)[0] {
		// Not written in place (cannot happen after Size): hand over what
		// was written.
		dirtyPool.Put(buf)
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, dirtyPool)}, nil
}

// Unmarshal decodes data into v. For a *request carrying a response body
// chunk the body is not copied: it stays in the gathered buffer, which the
// request keeps until release.
func (protoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*request); ok {
		return r.unmarshal(data)
	}
	m := protomsg.Of(v)
	if m == nil {
		return fmt.Errorf("extproc: cannot unmarshal into %T: not a proto message", v)
	}
	buf := data.MaterializeToBuffer(dirtyPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// request is what Process receives into. It embeds the ProcessingRequest so
// that any protobuf codec decodes into it as into the message itself; with
// protoCodec the body of a response_body chunk aliases the receive buffer
// (held in buf until release) and, once the stream has read its metadata,
// metadata_context is not decoded again (Envoy repeats it on every message).
type request struct {
	*extprocv3.ProcessingRequest
	// skipMetadata is set by the stream once it has what it needs from
	// metadata_context.
	skipMetadata bool

	buf   mem.Buffer
	rest  []byte
	body  extprocv3.HttpBody
	oneof extprocv3.ProcessingRequest_ResponseBody
}

func newRequest() *request {
	return &request{ProcessingRequest: &extprocv3.ProcessingRequest{}}
}

// release gives the receive buffer back; the body must not be used after.
func (r *request) release() {
	if r.buf != nil {
		r.buf.Free()
		r.buf = nil
	}
	r.body.Body = nil
}

// ProcessingRequest field numbers (envoy/service/ext_proc/v3/external_processor.proto).
const (
	fieldRequestHeaders   = 2
	fieldResponseHeaders  = 3
	fieldRequestBody      = 4
	fieldResponseBody     = 5
	fieldRequestTrailers  = 6
	fieldResponseTrailers = 7
	fieldMetadataContext  = 8
	// HttpBody
	fieldBody        = 1
	fieldEndOfStream = 2
)

func (r *request) unmarshal(data mem.BufferSlice) error {
	r.release()
	proto.Reset(r.ProcessingRequest)
	buf := data.MaterializeToBuffer(dirtyPool)
	b := buf.ReadOnlyData()
	body, eos, ok := r.split(b)
	if !ok {
		// Anything but a plain response body chunk: the generic decoder.
		defer buf.Free()
		return proto.Unmarshal(b, r.ProcessingRequest)
	}
	if len(r.rest) > 0 {
		if err := proto.Unmarshal(r.rest, r.ProcessingRequest); err != nil {
			buf.Free()
			return err
		}
	}
	r.buf = buf
	r.body = extprocv3.HttpBody{Body: body, EndOfStream: eos}
	r.oneof.ResponseBody = &r.body
	r.Request = &r.oneof
	return nil
}

// split reads a ProcessingRequest that holds a response_body: it returns
// the chunk (aliasing b) and end_of_stream, and leaves every other field in
// r.rest, encoded, for the generic decoder. It reports false for anything
// it does not read exactly as proto.Unmarshal would (another member of the
// oneof, a repeated or unknown HttpBody field, a malformed encoding), which
// then takes the generic path.
func (r *request) split(b []byte) (body []byte, eos, ok bool) {
	r.rest = r.rest[:0]
	var hb []byte
	seen := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false, false
		}
		field := b[:n+m]
		switch num {
		case fieldResponseBody:
			if seen || typ != protowire.BytesType {
				return nil, false, false
			}
			seen = true
			hb, _ = protowire.ConsumeBytes(b[n:])
		case fieldRequestHeaders, fieldResponseHeaders, fieldRequestBody, fieldRequestTrailers, fieldResponseTrailers:
			return nil, false, false
		case fieldMetadataContext:
			if !r.skipMetadata {
				r.rest = append(r.rest, field...)
			}
		default:
			r.rest = append(r.rest, field...)
		}
		b = b[n+m:]
	}
	if !seen {
		return nil, false, false
	}
	bodySeen := false
	for len(hb) > 0 {
		num, typ, n := protowire.ConsumeTag(hb)
		if n < 0 {
			return nil, false, false
		}
		switch {
		case num == fieldBody && typ == protowire.BytesType && !bodySeen:
			v, m := protowire.ConsumeBytes(hb[n:])
			if m < 0 {
				return nil, false, false
			}
			body, bodySeen = v, true
			hb = hb[n+m:]
		case num == fieldEndOfStream && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(hb[n:])
			if m < 0 {
				return nil, false, false
			}
			eos = v != 0
			hb = hb[n+m:]
		default:
			return nil, false, false
		}
	}
	if len(body) == 0 {
		// proto.Unmarshal leaves an empty body nil.
		body = nil
	}
	return body, eos, true
}

// bodyReply is the reply to a response body chunk whose body mutation is
// the masked output in out. protoCodec encodes it around the output
// buffers without copying them and hands the buffers to gRPC, which gives
// them back to the stream's lease as it writes them; any other codec
// marshals the equivalent ProcessingResponse, and the stream gives the
// buffers back after the send.
type bodyReply struct {
	out *output
	msg *extprocv3.ProcessingResponse
}

// ProtoReflect makes a bodyReply a proto message for codecs other than
// protoCodec.
func (r *bodyReply) ProtoReflect() protoreflect.Message {
	if r.msg == nil {
		var body []byte
		if r.out != nil {
			if len(r.out.bufs) == 1 {
				body = *r.out.bufs[0]
			} else {
				body = r.out.appendTo(make([]byte, 0, r.out.n), r.out.n)
			}
		}
		r.msg = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}},
		}}}
	}
	return r.msg.ProtoReflect()
}

func (r *bodyReply) reset() {
	r.out = nil
	r.msg = nil
}

// Field numbers of a body reply: ProcessingResponse.response_body >
// BodyResponse.response > CommonResponse.body_mutation > BodyMutation.body.
const (
	fieldProcessingResponseBody = 4
	fieldBodyResponseResponse   = 1
	fieldCommonBodyMutation     = 3
	fieldBodyMutationBody       = 1
)

// copyReplyBelow is the output size under which a reply is copied whole
// rather than handed over buffer by buffer.
const copyReplyBelow = 4 << 10

// marshal encodes the reply: a small header of tags and lengths, then the
// output buffers themselves, which gRPC now owns.
func (r *bodyReply) marshal() (mem.BufferSlice, error) {
	o := r.out
	n := o.n
	bm := protowire.SizeTag(fieldBodyMutationBody) + protowire.SizeBytes(n)
	cr := protowire.SizeTag(fieldCommonBodyMutation) + protowire.SizeBytes(bm)
	br := protowire.SizeTag(fieldBodyResponseResponse) + protowire.SizeBytes(cr)
	hdr := make([]byte, 0, 24)
	hdr = protowire.AppendTag(hdr, fieldProcessingResponseBody, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(br))
	hdr = protowire.AppendTag(hdr, fieldBodyResponseResponse, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(cr))
	hdr = protowire.AppendTag(hdr, fieldCommonBodyMutation, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(bm))
	hdr = protowire.AppendTag(hdr, fieldBodyMutationBody, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(n))
	if n < copyReplyBelow {
		b := o.appendTo(hdr, n)
		o.free()
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	out := make(mem.BufferSlice, 0, 1+len(o.bufs))
	out = append(out, mem.SliceBuffer(hdr))
	for _, b := range o.bufs {
		if len(*b) == 0 {
			o.l.put(b)
			continue
		}
		out = append(out, o.l.handOff(b))
	}
	o.bufs = o.bufs[:0]
	o.n = 0
	return out, nil
}
