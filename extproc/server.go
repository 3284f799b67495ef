// Package extproc is airlock's Envoy ext_proc v3 server: it masks secrets and
// personal data in response bodies before they reach the agent, and captures
// requests and responses for the recorder.
//
// Envoy configuration it expects (http filter envoy.filters.http.ext_proc,
// placed after ext_authz and before the credential injector):
//
//	processing_mode:
//	  request_header_mode: SEND
//	  response_header_mode: SEND
//	  request_body_mode: NONE
//	  response_body_mode: STREAMED      # or BUFFERED (Options.BodyMode)
//	  request_trailer_mode: SKIP
//	  response_trailer_mode: SKIP
//	allow_mode_override: true           # lets airlock skip bodies that cannot exist
//	failure_mode_allow: false           # fail closed
//	metadata_options:
//	  forwarding_namespaces:
//	    untyped: [envoy.filters.http.ext_authz]
//
// The forwarding namespace carries the masking rules that ext_authz selected
// for the request (authz.Metadata); without it every response gets
// masking.DefaultProfile.
//
// Behaviour per response:
//   - The request gets accept-encoding: identity, so the upstream sends an
//     uncompressed body. A gzip or deflate body is still inflated (bounded
//     by Options.MaxDecompressedBytes) and content-encoding is removed; any
//     other encoding is refused with a 502 before a byte is sent.
//   - content-length is removed whenever the body is processed, since
//     masking changes its length.
//   - Bodies that cannot exist (HEAD, 1xx, 204, 304, content-length 0) are
//     skipped with a mode_override; every other body is scanned, whatever its
//     content type (an object's type is chosen by whoever uploaded it),
//     unless Options.PassContentTypes lists it. JSON content types are
//     tokenized (field rules and detectors); everything else is scanned as
//     text by detectors.
//   - Failing closed: before the response headers are sent (errors at
//     response headers, or any error in BUFFERED mode) the agent gets a 502
//     with a Google-style JSON error; once a STREAMED body is under way the
//     stream ends with a gRPC error, which Envoy turns into a reset. The
//     agent never receives unmasked bytes.
//   - With response trailers present and response_trailer_mode SKIP, Envoy
//     never marks the last body chunk end_of_stream, so the bytes the masker
//     holds back (at most one carried tail) cannot be flushed; with SEND the
//     stream then fails closed. REST responses from Google carry no trailers.
package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"strconv"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/masking"
)

// Body modes of Options.BodyMode.
const (
	BodyModeStreamed = "streamed"
	BodyModeBuffered = "buffered"
)

// Recorder receives what the server captures. Implementations must not
// block for long: they run on the processing stream.
type Recorder interface {
	// RecordRequestHeaders is called once per request with its headers;
	// credentials (authorization, cookies, API keys) are already removed.
	// An error refuses the request (503) before it reaches the upstream.
	RecordRequestHeaders(ctx context.Context, meta authz.Metadata, headers map[string]string) error
	// RecordResponse is called once per response that had headers, before
	// its last bytes are released: maskedBody holds the first bytes of the
	// masked body (at most Options.RecordBodyBytes) and totalBytes the
	// length of the whole masked body. An error fails the response closed:
	// a 503 when no byte went out yet, else a reset.
	RecordResponse(ctx context.Context, meta authz.Metadata, status int, headers map[string]string, maskedBody []byte, totalBytes int64) error
}

// Options configure a Server.
type Options struct {
	// BodyMode is the response body mode Envoy is configured with when its
	// first message does not say: "streamed" (default) or "buffered".
	BodyMode string
	// MaxDecompressedBytes bounds a compressed response once inflated
	// (gzip bombs); default 64 MiB. A larger body ends in an error.
	MaxDecompressedBytes int64
	// RecordBodyBytes bounds the masked body handed to the Recorder;
	// default 64 KiB.
	RecordBodyBytes int
	// PassContentTypes lists media-type prefixes (e.g. "video/") whose
	// bodies are not inspected. Empty by default: every body is scanned,
	// since an object's content type is chosen by whoever uploaded it.
	PassContentTypes []string
	// Engine holds the detectors; nil means built-in detectors only.
	// Replace it at run time with Server.SetEngine.
	Engine *masking.Engine
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Recorder may be nil.
	Recorder Recorder
}

// Server implements the ext_proc v3 ExternalProcessor service.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	opts   Options
	log    *slog.Logger
	engine atomic.Pointer[masking.Engine]
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// NewServer returns a server; it fails only if the built-in detectors
// cannot be compiled.
func NewServer(opts Options) (*Server, error) {
	if opts.BodyMode == "" {
		opts.BodyMode = BodyModeStreamed
	}
	if opts.BodyMode != BodyModeStreamed && opts.BodyMode != BodyModeBuffered {
		return nil, fmt.Errorf("extproc: body mode %q: want streamed or buffered", opts.BodyMode)
	}
	if opts.MaxDecompressedBytes <= 0 {
		opts.MaxDecompressedBytes = 64 << 20
	}
	if opts.RecordBodyBytes <= 0 {
		opts.RecordBodyBytes = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "extproc")}
	e := opts.Engine
	if e == nil {
		var err error
		if e, err = masking.NewEngine(nil); err != nil {
			return nil, fmt.Errorf("extproc: %w", err)
		}
	}
	s.engine.Store(e)
	return s, nil
}

// SetEngine swaps the detectors (policy reload); streams already running
// keep the engine they started with.
func (s *Server) SetEngine(e *masking.Engine) {
	if e != nil {
		s.engine.Store(e)
	}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	extprocv3.RegisterExternalProcessorServer(r, s)
}

// Process serves one HTTP stream.
func (s *Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := srv.Context()
	st := &stream{s: s, ctx: ctx, engine: s.engine.Load(), bodyMode: s.opts.BodyMode}
	defer st.end()
	// One request value for the whole stream: with protoCodec a body chunk
	// stays in gRPC's receive buffer until release.
	req := newRequest()
	defer req.release()
	for {
		req.skipMetadata = st.metaSeen
		err := srv.RecvMsg(req)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return err
		}
		resp, err := st.handle(req.ProcessingRequest)
		// Nothing handle returns refers to the received chunk.
		req.release()
		if err != nil {
			// Fail closed: Envoy answers 500 or resets the stream; the agent
			// never gets the unmasked bytes.
			st.log().Warn("masking failed; ending the stream", "error", err)
			return status.Error(codes.Internal, "airlock: "+err.Error())
		}
		if resp == nil {
			continue
		}
		// Send has marshalled resp when it returns (stats handlers may not
		// keep the message either): st.out, which resp may hold, is free
		// from then on.
		err = srv.Send(resp)
		st.releaseOut()
		if err != nil {
			return err
		}
	}
}

// stream is the state of one HTTP stream.
type stream struct {
	s        *Server
	ctx      context.Context
	engine   *masking.Engine
	meta     authz.Metadata
	metaSeen bool
	bodyMode string
	method   string

	status      int
	respHeaders map[string]string
	masker      *masking.Stream
	// out holds the masked chunk of the reply being built: a buffer of
	// dirtyPool, given back once the reply is sent (releaseOut).
	out         *[]byte
	inflate     *inflater
	passBody    bool
	noBody      bool
	record      []byte
	total       int64
	recorded    bool
	sawRespHdrs bool
}

func (st *stream) log() *slog.Logger {
	l := st.s.log
	if st.meta.RequestID != "" {
		l = l.With("request_id", st.meta.RequestID)
	}
	return l
}

// releaseOut gives the reply buffer back once the reply is sent: a stream
// waiting for its upstream holds none, and the next chunk, of this stream
// or another, is masked into a buffer still in this core's cache.
func (st *stream) releaseOut() {
	if st.out != nil {
		dirtyPool.Put(st.out)
		st.out = nil
	}
}

func (st *stream) end() {
	st.releaseOut()
	if st.inflate != nil {
		st.inflate.Abort()
	}
}

func (st *stream) readMetadata(req *extprocv3.ProcessingRequest) {
	if st.metaSeen || req.GetMetadataContext() == nil {
		return
	}
	if fm := req.GetMetadataContext().GetFilterMetadata()[authz.MetadataNamespace]; fm != nil {
		st.meta = authz.MetadataFromMap(fm.AsMap())
		st.metaSeen = true
	}
}

func (st *stream) handle(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	st.readMetadata(req)
	if pc := req.GetProtocolConfig(); pc != nil {
		switch pc.GetResponseBodyMode() {
		case filterv3.ProcessingMode_BUFFERED:
			st.bodyMode = BodyModeBuffered
		case filterv3.ProcessingMode_STREAMED:
			st.bodyMode = BodyModeStreamed
		}
	}
	observe := req.GetObservabilityMode()
	var resp *extprocv3.ProcessingResponse
	var err error
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		resp = st.requestHeaders(r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		resp = st.responseHeaders(r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		resp, err = st.responseBody(r.ResponseBody)
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		if err = st.finishBody(); err == nil {
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
		}
	default:
		err = fmt.Errorf("extproc: unexpected processing request %T", req.Request)
	}
	if observe {
		// Envoy ignores replies in observability mode.
		return nil, nil
	}
	return resp, err
}

func headerMap(h *corev3.HeaderMap) map[string]string {
	out := make(map[string]string, len(h.GetHeaders()))
	for _, hv := range h.GetHeaders() {
		v := string(hv.GetRawValue())
		if v == "" {
			v = hv.GetValue()
		}
		k := strings.ToLower(hv.GetKey())
		if old, ok := out[k]; ok {
			v = old + "," + v
		}
		out[k] = v
	}
	return out
}

func redacted(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if authz.CredentialHeader(k, v) {
			continue
		}
		out[k] = v
	}
	return out
}

func setHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func (st *stream) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hm := headerMap(h.GetHeaders())
	st.method = hm[":method"]
	if rec := st.s.opts.Recorder; rec != nil {
		if err := rec.RecordRequestHeaders(st.ctx, st.meta, redacted(hm)); err != nil {
			st.log().Error("recording the request failed; refusing it", "err", err)
			return st.unavailable("airlock: unavailable: the session recorder cannot store this request, so it is refused; retry later.")
		}
	}
	// Ask the upstream for an uncompressed body so that it can be masked
	// without inflating it.
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
		Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{setHeader("accept-encoding", "identity")},
		}},
	}}}
}

// Profile is the masking profile of a request: the default profile plus
// every masking rule ext_authz selected for it (their fields labelled with
// the rule's name). Responses are masked with it, and so are request bodies
// before approvers or recordings see them.
func Profile(specs []authz.MaskingSpec) masking.Profile {
	p := masking.DefaultProfile()
	for _, m := range specs {
		extra := masking.Profile{Detectors: m.Detectors}
		for _, f := range m.Fields {
			extra.Fields = append(extra.Fields, masking.Field{Path: f, Label: m.Name})
		}
		p = p.Merge(extra)
	}
	return p
}

// bodyKind says how a content type is read.
func bodyKind(contentType string) masking.Kind {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "/json") {
		return masking.JSON
	}
	return masking.Text
}

func (st *stream) responseHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	st.sawRespHdrs = true
	hm := headerMap(h.GetHeaders())
	st.respHeaders = redacted(hm)
	st.status, _ = strconv.Atoi(hm[":status"])
	noBody := h.GetEndOfStream() || st.method == "HEAD" || st.status == 204 || st.status == 304 ||
		(st.status >= 100 && st.status < 200) || hm["content-length"] == "0"
	st.noBody = noBody
	ct := hm["content-type"]
	for _, p := range st.s.opts.PassContentTypes {
		if p != "" && strings.HasPrefix(strings.ToLower(ct), strings.ToLower(p)) && !noBody {
			// The operator chose not to inspect this media type.
			st.passBody = true
			resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
			resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_NONE}
			return resp
		}
	}
	hr := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{}}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}}
	if noBody {
		st.passBody = true
		// Nothing to mask: let Envoy skip the body (honoured only with
		// allow_mode_override; otherwise body messages pass untouched).
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_NONE}
		if h.GetEndOfStream() {
			if err := st.recordResponse(); err != nil {
				return st.unavailable("airlock: unavailable: the session recorder cannot store this response, so it is withheld; retry later.")
			}
		}
		return resp
	}
	enc := strings.ToLower(strings.TrimSpace(hm["content-encoding"]))
	mut := &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		st.inflate = newInflater(enc, st.s.opts.MaxDecompressedBytes)
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-encoding")
		delete(st.respHeaders, "content-encoding")
	default:
		st.log().Warn("refusing a response whose encoding cannot be inspected", "content_encoding", enc)
		return st.refuse(fmt.Sprintf("airlock: the response is encoded with %q, which airlock cannot inspect for secrets; it was not passed on", enc))
	}
	masker, err := st.engine.NewStream(Profile(st.meta.Masking), bodyKind(ct))
	if err != nil {
		st.log().Error("masking profile does not compile", "error", err)
		return st.refuse("airlock: the masking rules for this request are invalid: " + err.Error())
	}
	st.masker = masker
	delete(st.respHeaders, "content-length")
	hr.Response.HeaderMutation = mut
	return resp
}

// unavailable answers 503 with a local reply (before any response byte
// went out), in Google's error shape.
func (st *stream) unavailable(msg string) *extprocv3.ProcessingResponse {
	return st.localReply(typev3.StatusCode_ServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "airlock_recording_failed", msg)
}

// refuse answers with a local reply before any response byte went out.
func (st *stream) refuse(msg string) *extprocv3.ProcessingResponse {
	st.passBody = true
	return st.localReply(typev3.StatusCode_BadGateway, "INTERNAL", "MASKING_FAILED", "airlock_masking_failed", msg)
}

// localReply is an ImmediateResponse carrying a Google-style JSON error.
func (st *stream) localReply(code typev3.StatusCode, status, reason, details, msg string) *extprocv3.ProcessingResponse {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": int(code), "status": status, "message": msg,
		"details": []any{map[string]any{
			"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "airlock",
			"metadata": map[string]string{"request_id": st.meta.RequestID},
		}},
	}})
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: code},
		Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			setHeader("content-type", "application/json; charset=UTF-8"),
			setHeader("cache-control", "no-store"),
		}},
		Body:    body,
		Details: details,
	}}}
}

func (st *stream) responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	cr := &extprocv3.CommonResponse{}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	if st.passBody || st.masker == nil {
		if !st.sawRespHdrs {
			return nil, errors.New("extproc: response body before response headers")
		}
		if st.noBody && len(b.GetBody()) > 0 {
			// A response announced without a body carries one: refuse
			// rather than pass unmasked bytes.
			return nil, errors.New("extproc: body data on a response without a body")
		}
		if b.GetEndOfStream() {
			if err := st.recordResponse(); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}
	out, err := st.maskChunk(b.GetBody(), b.GetEndOfStream())
	if err != nil {
		if st.bodyMode == BodyModeBuffered {
			// Envoy still holds the response headers: answer with an error.
			st.log().Warn("masking failed; refusing the response", "error", err)
			return st.refuse("airlock: the response could not be masked: " + err.Error()), nil
		}
		return nil, err
	}
	if bytes.Equal(out, b.GetBody()) {
		// The chunk goes out as Envoy holds it (nothing masked, and the
		// bytes held back, if any, are the same as those released): a
		// reply without a mutation says so without sending it back.
		return resp, nil
	}
	if len(out) == 0 {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}
	} else {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	}
	return resp, nil
}

// maskChunk masks one chunk; with eos it flushes the masker.
func (st *stream) maskChunk(chunk []byte, eos bool) ([]byte, error) {
	in := chunk
	var err error
	if st.inflate != nil {
		if in, err = st.inflate.Write(chunk); err != nil {
			return nil, err
		}
		if eos {
			rest, err := st.inflate.Close()
			if err != nil {
				return nil, err
			}
			in = append(in, rest...)
		}
	}
	want := len(in) + len(in)/16 + 64
	if st.out == nil || cap(*st.out) < want {
		st.releaseOut()
		st.out = dirtyPool.Get(want)
	}
	out := (*st.out)[:0]
	if out, err = st.masker.Write(out, in); err != nil {
		return nil, err
	}
	if eos {
		if out, err = st.masker.Close(out); err != nil {
			return nil, err
		}
	}
	if len(out) > 0 && &out[0] != &(*st.out)[:1][0] {
		// Grown past the pooled buffer.
		st.releaseOut()
	}
	st.total += int64(len(out))
	if room := st.s.opts.RecordBodyBytes - len(st.record); room > 0 && st.s.opts.Recorder != nil {
		n := min(room, len(out))
		st.record = append(st.record, out[:n]...)
	}
	if eos {
		st.logMasked()
		if err := st.recordResponse(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// finishBody runs when trailers arrive: in STREAMED mode with trailers the
// last body chunk was not marked end_of_stream.
func (st *stream) finishBody() error {
	if st.masker == nil || st.passBody || st.recorded {
		return st.recordResponse()
	}
	// Bytes still held by the masker cannot be sent with trailers; a body
	// that ends this way is refused rather than truncated silently.
	out, err := st.maskChunk(nil, true)
	if err != nil {
		return err
	}
	if len(out) > 0 {
		return errors.New("extproc: masked body bytes pending when trailers arrived")
	}
	return nil
}

func (st *stream) logMasked() {
	if n := st.masker.Masked(); n > 0 {
		st.log().Info("masked response", "masked", n, "gcp_method", st.meta.GCPMethod, "status", st.status)
	}
}

// recordResponse records the response once; an error means it could not be
// made durable and the response must not complete.
func (st *stream) recordResponse() error {
	if st.recorded || !st.sawRespHdrs {
		return nil
	}
	st.recorded = true
	if rec := st.s.opts.Recorder; rec != nil {
		if err := rec.RecordResponse(st.ctx, st.meta, st.status, st.respHeaders, st.record, st.total); err != nil {
			st.log().Error("recording the response failed; failing it closed", "err", err)
			return fmt.Errorf("extproc: recording the response: %w", err)
		}
	}
	return nil
}
