package standin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy's ext_proc defaults used by the stand-in.
const (
	// ExtProcDefaultMessageTimeout is message_timeout's default.
	ExtProcDefaultMessageTimeout = 200 * time.Millisecond
	// ExtProcDefaultChunkSize is the body chunk size when none is configured
	// (a typical codec read).
	ExtProcDefaultChunkSize = 16 << 10
	// ExtProcDefaultBufferLimit is the connection buffer limit (1 MiB).
	ExtProcDefaultBufferLimit = 1 << 20
	// extProcHeaderLimit is the default header count limit.
	extProcHeaderLimit = 100
)

// ExtProcConfig mirrors the ext_proc filter settings the stand-in honours.
//
// Modelled: header modes SEND/SKIP; body modes NONE, BUFFERED and STREAMED
// (each codec read of ChunkSize bytes one message, sent without waiting for
// replies, replies applied FIFO); trailers; protocol_config on the first
// message only; metadata forwarding; the header mutation checks of
// envoy-behaviour.md §2 (raw_value only); CONTINUE_AND_REPLACE; immediate
// responses; mode_override; content-length rules; message timeout (504);
// gRPC errors and spurious messages (status_on_error, or a reset once
// response headers went downstream); failure_mode_allow; the buffer limit in
// BUFFERED mode. Not modelled: BUFFERED_PARTIAL and FULL_DUPLEX_STREAMED
// (answered 500), observability mode, override_message_timeout (always
// ignored, as with max_message_timeout unset), route-cache clearing, and a
// body that is complete before the headers reply (equivalent to a
// ChunkSize of at least the body length).
type ExtProcConfig struct {
	// ProcessingMode is processing_mode; nil means Envoy's defaults
	// (headers SEND, bodies NONE, trailers SKIP).
	ProcessingMode *filterv3.ProcessingMode
	// MessageTimeout is message_timeout; 0 means 200 ms.
	MessageTimeout time.Duration
	// FailureModeAllow is failure_mode_allow.
	FailureModeAllow bool
	// AllowModeOverride is allow_mode_override.
	AllowModeOverride bool
	// AllowedOverrideModes is allowed_override_modes.
	AllowedOverrideModes []*filterv3.ProcessingMode
	// SendBodyWithoutWaitingForHeaderResponse is the field of the same name;
	// it is sent in protocol_config and disables mode_override, but body
	// messages still follow the headers reply.
	SendBodyWithoutWaitingForHeaderResponse bool
	// ForwardingNamespaces is metadata_options.forwarding_namespaces.untyped.
	ForwardingNamespaces []string
	// StatusOnError is status_on_error; 0 means 500.
	StatusOnError int
	// DisallowIsError, AllowAllRouting and AllowEnvoy are the mutation_rules
	// fields of the same names.
	DisallowIsError bool
	AllowAllRouting bool
	AllowEnvoy      bool
	// ChunkSize is the size of the body chunks (codec reads) sent in STREAMED
	// mode, in both directions; 0 means 16 KiB. 1 sends one byte per message.
	ChunkSize int
	// BufferLimit is the connection buffer limit; 0 means 1 MiB.
	BufferLimit int
	// EmptyBodyAsDataFrame models an upstream that ends an empty response
	// body with an empty DATA frame instead of ending the stream on the
	// headers.
	EmptyBodyAsDataFrame bool
}

// ExtProcAirlockConfig is the configuration airlock ships for its ext_proc
// filter: response bodies STREAMED, mode override allowed, the ext_authz
// namespace forwarded, failing closed.
func ExtProcAirlockConfig() ExtProcConfig {
	return ExtProcConfig{
		ProcessingMode: &filterv3.ProcessingMode{
			RequestHeaderMode:   filterv3.ProcessingMode_SEND,
			ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
			RequestBodyMode:     filterv3.ProcessingMode_NONE,
			ResponseBodyMode:    filterv3.ProcessingMode_STREAMED,
			RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
			ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
		},
		AllowModeOverride:    true,
		ForwardingNamespaces: []string{AuthzNamespace},
	}
}

func (c ExtProcConfig) withDefaults() ExtProcConfig {
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = ExtProcDefaultMessageTimeout
	}
	if c.StatusOnError == 0 {
		c.StatusOnError = http.StatusInternalServerError
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = ExtProcDefaultChunkSize
	}
	if c.BufferLimit <= 0 {
		c.BufferLimit = ExtProcDefaultBufferLimit
	}
	m := &filterv3.ProcessingMode{}
	if c.ProcessingMode != nil {
		m = proto.Clone(c.ProcessingMode).(*filterv3.ProcessingMode)
	}
	if m.RequestHeaderMode == filterv3.ProcessingMode_DEFAULT {
		m.RequestHeaderMode = filterv3.ProcessingMode_SEND
	}
	if m.ResponseHeaderMode == filterv3.ProcessingMode_DEFAULT {
		m.ResponseHeaderMode = filterv3.ProcessingMode_SEND
	}
	if m.RequestTrailerMode == filterv3.ProcessingMode_DEFAULT {
		m.RequestTrailerMode = filterv3.ProcessingMode_SKIP
	}
	if m.ResponseTrailerMode == filterv3.ProcessingMode_DEFAULT {
		m.ResponseTrailerMode = filterv3.ProcessingMode_SKIP
	}
	c.ProcessingMode = m
	return c
}

// ExtProcFilter is the stand-in for Envoy's ext_proc HTTP filter.
type ExtProcFilter struct {
	client extprocv3.ExternalProcessorClient
	cfg    ExtProcConfig
}

var _ ResponseFilter = (*ExtProcFilter)(nil)

// NewExtProcFilter returns a filter talking to the ext_proc server on conn.
func NewExtProcFilter(conn grpc.ClientConnInterface, cfg ExtProcConfig) *ExtProcFilter {
	return &ExtProcFilter{client: extprocv3.NewExternalProcessorClient(conn), cfg: cfg.withDefaults()}
}

// ExtProcResult is what the downstream client receives.
type ExtProcResult struct {
	// Status, Header, Body and Trailer are the response as sent downstream.
	Status  int
	Header  http.Header
	Body    []byte
	Trailer http.Header
	// Reset is true when the stream was reset after the response headers
	// went out: the client got Status and Header and a truncated Body.
	Reset bool
	// LocalReply is true when Envoy answered itself (immediate response or
	// error); Details is the response-code details.
	LocalReply bool
	Details    string
	// Upstream is the request the upstream received; nil when none was sent.
	Upstream *http.Request
	// UpstreamBody is the body the upstream received.
	UpstreamBody []byte
	// Sent lists every message sent to the processor, in order.
	Sent []*extprocv3.ProcessingRequest
}

// Filter implements ResponseFilter: it runs the request through the
// processor, calls next as the upstream and writes the result to w. A reset
// aborts the connection (http.ErrAbortHandler) after writing what the
// client would have received.
func (f *ExtProcFilter) Filter(w http.ResponseWriter, r *http.Request, md *corev3.Metadata, next http.Handler) {
	res := f.Do(r.Context(), r, md, next)
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	if res.Reset {
		w.Header().Del("Content-Length")
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
	if res.Reset {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
}

// extProcHeaders is an ordered header list with lower-case names.
type extProcHeaders [][2]string

func (h extProcHeaders) get(k string) (string, bool) {
	for _, e := range h {
		if e[0] == k {
			return e[1], true
		}
	}
	return "", false
}

func (h extProcHeaders) del(k string) extProcHeaders {
	out := h[:0:0]
	for _, e := range h {
		if e[0] != k {
			out = append(out, e)
		}
	}
	return out
}

func (h extProcHeaders) set(k, v string) extProcHeaders {
	for i, e := range h {
		if e[0] == k {
			out := append(extProcHeaders{}, h[:i]...)
			out = append(out, [2]string{k, v})
			for _, e2 := range h[i+1:] {
				if e2[0] != k {
					out = append(out, e2)
				}
			}
			return out
		}
	}
	return append(h, [2]string{k, v})
}

func (h extProcHeaders) proto() *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for _, e := range h {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: e[0], RawValue: []byte(e[1])})
	}
	return m
}

// extProcOutcome ends processing early.
type extProcOutcome struct {
	status  int
	header  extProcHeaders
	body    []byte
	details string
}

// extProcRun is one HTTP stream through the filter.
type extProcRun struct {
	f       *ExtProcFilter
	cfg     ExtProcConfig
	mode    *filterv3.ProcessingMode
	md      *corev3.Metadata
	stream  extprocv3.ExternalProcessor_ProcessClient
	replies chan extProcReply
	cancel  context.CancelFunc
	// active is false once processing stopped (stream closed OK, or a
	// failure ignored with failure_mode_allow).
	active   bool
	first    bool
	sent     []*extprocv3.ProcessingRequest
	overrode bool
	openErr  error
}

type extProcReply struct {
	resp *extprocv3.ProcessingResponse
	err  error
}

// errExtProcSpurious marks a reply of the wrong type.
var errExtProcSpurious = errors.New("spurious message")

// errExtProcTimeout marks an expired message timer.
var errExtProcTimeout = errors.New("per-message timeout exceeded")

// Do runs one request through the processor with upstream as the rest of
// the filter chain, and returns what the client receives. md is the dynamic
// metadata of the stream (only ForwardingNamespaces are sent).
func (f *ExtProcFilter) Do(ctx context.Context, r *http.Request, md *corev3.Metadata, upstream http.Handler) *ExtProcResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &extProcRun{f: f, cfg: f.cfg, mode: proto.Clone(f.cfg.ProcessingMode).(*filterv3.ProcessingMode),
		md: extProcForwarded(md, f.cfg.ForwardingNamespaces), active: true, first: true,
		replies: make(chan extProcReply, 1024), cancel: cancel}
	st, err := f.client.Process(ctx)
	if err != nil {
		run.openErr = err
	} else {
		run.stream = st
		go func() {
			for {
				resp, err := st.Recv()
				run.replies <- extProcReply{resp, err}
				if err != nil {
					return
				}
			}
		}()
	}
	res := run.do(r, upstream)
	res.Sent = run.sent
	if run.stream != nil {
		_ = run.stream.CloseSend()
	}
	return res
}

func extProcForwarded(md *corev3.Metadata, namespaces []string) *corev3.Metadata {
	if md == nil {
		return nil
	}
	out := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for _, ns := range namespaces {
		if s, ok := md.GetFilterMetadata()[ns]; ok {
			out.FilterMetadata[ns] = s
		}
	}
	if len(out.FilterMetadata) == 0 {
		return nil
	}
	return out
}

// send sends one message; a send failure is reported like a stream error.
func (x *extProcRun) send(req *extprocv3.ProcessingRequest) error {
	if x.openErr != nil {
		return x.openErr
	}
	req.MetadataContext = x.md
	if x.first {
		x.first = false
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:                         x.cfg.ProcessingMode.RequestBodyMode,
			ResponseBodyMode:                        x.cfg.ProcessingMode.ResponseBodyMode,
			SendBodyWithoutWaitingForHeaderResponse: x.cfg.SendBodyWithoutWaitingForHeaderResponse,
		}
	}
	x.sent = append(x.sent, req)
	if err := x.stream.Send(req); err != nil {
		if errors.Is(err, io.EOF) {
			// The real error comes from Recv.
			return nil
		}
		return err
	}
	return nil
}

// await waits for the next reply under the message timer.
func (x *extProcRun) await() (*extprocv3.ProcessingResponse, error) {
	if x.openErr != nil {
		return nil, x.openErr
	}
	t := time.NewTimer(x.cfg.MessageTimeout)
	defer t.Stop()
	for {
		select {
		case r := <-x.replies:
			if r.err == nil && r.resp.GetOverrideMessageTimeout() != nil {
				// max_message_timeout defaults to 0, which disables the
				// override: the message is ignored, the timer keeps running.
				continue
			}
			return r.resp, r.err
		case <-t.C:
			return nil, errExtProcTimeout
		}
	}
}

// fail turns a processing error into the outcome Envoy produces; nil means
// continue without processing (failure_mode_allow or a clean close).
func (x *extProcRun) fail(err error) *extProcOutcome {
	x.active = false
	if errors.Is(err, io.EOF) {
		// A clean close with OK: continue without further processing.
		return nil
	}
	if x.cfg.FailureModeAllow {
		return nil
	}
	x.cancel()
	switch {
	case errors.Is(err, errExtProcTimeout):
		return &extProcOutcome{status: http.StatusGatewayTimeout, details: "ext_proc_error_per-message_timeout_exceeded"}
	case errors.Is(err, errExtProcSpurious):
		return &extProcOutcome{status: x.cfg.StatusOnError, details: "ext_proc_error_spurious_message"}
	}
	s, _ := status.FromError(err)
	return &extProcOutcome{status: x.cfg.StatusOnError,
		details: fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", s.Code(), s.Message())}
}

// immediate builds the local reply of an ImmediateResponse.
func (x *extProcRun) immediate(ir *extprocv3.ImmediateResponse) *extProcOutcome {
	x.active = false
	x.cancel()
	st := int(ir.GetStatus().GetCode())
	if st < 200 {
		st = 200
	}
	var h extProcHeaders
	h, _ = x.mutate(h, ir.GetHeaders(), true, true)
	return &extProcOutcome{status: st, header: h, body: ir.GetBody(), details: ir.GetDetails()}
}

// extProcRouting are the headers that select a route.
var extProcRouting = map[string]bool{"host": true, ":authority": true, ":method": true, ":scheme": true}

// mutate applies a header mutation the way Envoy's mutation utilities do.
// With lenient (immediate responses) rejected headers are always dropped.
func (x *extProcRun) mutate(h extProcHeaders, m *extprocv3.HeaderMutation, response, lenient bool) (extProcHeaders, error) {
	if m == nil {
		return h, nil
	}
	if len(m.GetRemoveHeaders()) > extProcHeaderLimit || len(m.GetSetHeaders()) > extProcHeaderLimit {
		return h, errors.New("header mutation count above the limit")
	}
	reject := func(what string) error {
		if x.cfg.DisallowIsError && !lenient {
			return fmt.Errorf("header mutation rejected: %s", what)
		}
		return nil
	}
	for _, k := range m.GetRemoveHeaders() {
		k = strings.ToLower(k)
		if !extProcValidName(k) {
			return h, fmt.Errorf("invalid header name %q", k)
		}
		if strings.HasPrefix(k, ":") || k == "host" {
			if err := reject("remove " + k); err != nil {
				return h, err
			}
			continue
		}
		if err := x.allowed(k, false); err != nil {
			if err := reject(err.Error()); err != nil {
				return h, err
			}
			continue
		}
		h = h.del(k)
	}
	for _, o := range m.GetSetHeaders() {
		hv := o.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return h, fmt.Errorf("header %q has both value and raw_value", hv.GetKey())
		}
		k := strings.ToLower(hv.GetKey())
		v := string(hv.GetRawValue()) // only raw_value is read
		if !extProcValidName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return h, fmt.Errorf("invalid header %q", k)
		}
		_, exists := h.get(k)
		appendOp := o.GetAppend().GetValue() && exists
		if appendOp && strings.HasPrefix(k, ":") {
			if err := reject("append to " + k); err != nil {
				return h, err
			}
			continue
		}
		if err := x.allowed(k, true); err != nil {
			if err := reject(err.Error()); err != nil {
				return h, err
			}
			continue
		}
		if k == ":status" {
			n, err := strconv.Atoi(v)
			if !response || err != nil || n < 200 {
				if err := reject(":status " + v); err != nil {
					return h, err
				}
				continue
			}
		}
		if appendOp {
			h = append(h, [2]string{k, v})
		} else {
			h = h.set(k, v)
		}
	}
	if len(h) > extProcHeaderLimit+8 {
		return h, errors.New("header count above the limit after mutation")
	}
	return h, nil
}

// allowed applies the default mutation rules to a header name.
func (x *extProcRun) allowed(k string, set bool) error {
	if extProcRouting[k] && !x.cfg.AllowAllRouting {
		return fmt.Errorf("routing header %s", k)
	}
	if strings.HasPrefix(k, "x-envoy-") && !x.cfg.AllowEnvoy {
		return fmt.Errorf("envoy header %s", k)
	}
	if strings.HasPrefix(k, ":") && set {
		switch k {
		case ":path", ":status", ":method", ":authority", ":scheme":
		default:
			return fmt.Errorf("unknown pseudo-header %s", k)
		}
	}
	return nil
}

func extProcValidName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ',' || c == ';' || c == '"' || c == '\\' || c == '{' || c == '}' {
			return false
		}
		if c == ':' && i > 0 {
			return false
		}
	}
	return true
}

// override applies a mode_override from a headers reply.
func (x *extProcRun) override(m *filterv3.ProcessingMode) {
	if m == nil || !x.cfg.AllowModeOverride || x.cfg.SendBodyWithoutWaitingForHeaderResponse || x.overrode {
		return
	}
	if x.cfg.ProcessingMode.RequestBodyMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED ||
		x.cfg.ProcessingMode.ResponseBodyMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return
	}
	if len(x.cfg.AllowedOverrideModes) > 0 {
		ok := false
		for _, a := range x.cfg.AllowedOverrideModes {
			if a.ResponseHeaderMode == m.ResponseHeaderMode && a.RequestBodyMode == m.RequestBodyMode &&
				a.ResponseBodyMode == m.ResponseBodyMode && a.RequestTrailerMode == m.RequestTrailerMode &&
				a.ResponseTrailerMode == m.ResponseTrailerMode {
				ok = true
			}
		}
		if !ok {
			return
		}
	}
	if m.RequestHeaderMode != filterv3.ProcessingMode_DEFAULT {
		x.mode.RequestHeaderMode = m.RequestHeaderMode
	}
	if m.ResponseHeaderMode != filterv3.ProcessingMode_DEFAULT {
		x.mode.ResponseHeaderMode = m.ResponseHeaderMode
	}
	if m.RequestTrailerMode != filterv3.ProcessingMode_DEFAULT {
		x.mode.RequestTrailerMode = m.RequestTrailerMode
	}
	if m.ResponseTrailerMode != filterv3.ProcessingMode_DEFAULT {
		x.mode.ResponseTrailerMode = m.ResponseTrailerMode
	}
	// Both body modes are always copied: unset means NONE.
	x.mode.RequestBodyMode = m.RequestBodyMode
	x.mode.ResponseBodyMode = m.ResponseBodyMode
}

// extProcDirection abstracts the request and response paths.
type extProcDirection struct {
	response bool
}

func (d extProcDirection) headersMsg(h extProcHeaders, eos bool) *extprocv3.ProcessingRequest {
	hh := &extprocv3.HttpHeaders{Headers: h.proto(), EndOfStream: eos}
	if d.response {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}}
}

func (d extProcDirection) bodyMsg(b []byte, eos bool) *extprocv3.ProcessingRequest {
	hb := &extprocv3.HttpBody{Body: b, EndOfStream: eos}
	if d.response {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}}
}

func (d extProcDirection) trailersMsg(h extProcHeaders) *extprocv3.ProcessingRequest {
	ht := &extprocv3.HttpTrailers{Trailers: h.proto()}
	if d.response {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: ht}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: ht}}
}

func (d extProcDirection) headersReply(r *extprocv3.ProcessingResponse) (*extprocv3.CommonResponse, bool) {
	if d.response {
		if v, ok := r.Response.(*extprocv3.ProcessingResponse_ResponseHeaders); ok {
			return v.ResponseHeaders.GetResponse(), true
		}
		return nil, false
	}
	if v, ok := r.Response.(*extprocv3.ProcessingResponse_RequestHeaders); ok {
		return v.RequestHeaders.GetResponse(), true
	}
	return nil, false
}

func (d extProcDirection) bodyReply(r *extprocv3.ProcessingResponse) (*extprocv3.CommonResponse, bool) {
	if d.response {
		if v, ok := r.Response.(*extprocv3.ProcessingResponse_ResponseBody); ok {
			return v.ResponseBody.GetResponse(), true
		}
		return nil, false
	}
	if v, ok := r.Response.(*extprocv3.ProcessingResponse_RequestBody); ok {
		return v.RequestBody.GetResponse(), true
	}
	return nil, false
}

func (d extProcDirection) trailersReply(r *extprocv3.ProcessingResponse) (*extprocv3.HeaderMutation, bool) {
	if d.response {
		if v, ok := r.Response.(*extprocv3.ProcessingResponse_ResponseTrailers); ok {
			return v.ResponseTrailers.GetHeaderMutation(), true
		}
		return nil, false
	}
	if v, ok := r.Response.(*extprocv3.ProcessingResponse_RequestTrailers); ok {
		return v.RequestTrailers.GetHeaderMutation(), true
	}
	return nil, false
}

// extProcMessage is one HTTP message (request or response) in flight.
type extProcMessage struct {
	headers  extProcHeaders
	body     []byte
	trailers extProcHeaders
	// replaced is set by CONTINUE_AND_REPLACE: the body is final and no
	// body or trailer messages are sent.
	replaced bool
}

func (x *extProcRun) headerMode(d extProcDirection) filterv3.ProcessingMode_HeaderSendMode {
	if d.response {
		return x.mode.ResponseHeaderMode
	}
	return x.mode.RequestHeaderMode
}

func (x *extProcRun) bodyMode(d extProcDirection) filterv3.ProcessingMode_BodySendMode {
	if d.response {
		return x.mode.ResponseBodyMode
	}
	return x.mode.RequestBodyMode
}

func (x *extProcRun) trailerMode(d extProcDirection) filterv3.ProcessingMode_HeaderSendMode {
	if d.response {
		return x.mode.ResponseTrailerMode
	}
	return x.mode.RequestTrailerMode
}

// hasBody reports whether the message has body data (an empty response
// DATA frame counts when EmptyBodyAsDataFrame is set).
func (x *extProcRun) hasBody(d extProcDirection, m *extProcMessage) bool {
	return len(m.body) > 0 || d.response && x.cfg.EmptyBodyAsDataFrame
}

// processHeaders sends the headers message and applies its reply.
func (x *extProcRun) processHeaders(d extProcDirection, m *extProcMessage) *extProcOutcome {
	if !x.active || x.headerMode(d) == filterv3.ProcessingMode_SKIP {
		return nil
	}
	eos := !x.hasBody(d, m) && m.trailers == nil
	if err := x.send(d.headersMsg(m.headers, eos)); err != nil {
		return x.fail(err)
	}
	resp, err := x.await()
	if err != nil {
		return x.fail(err)
	}
	if ir, ok := resp.Response.(*extprocv3.ProcessingResponse_ImmediateResponse); ok {
		return x.immediate(ir.ImmediateResponse)
	}
	cr, ok := d.headersReply(resp)
	if !ok {
		return x.fail(errExtProcSpurious)
	}
	h, err := x.mutate(m.headers, cr.GetHeaderMutation(), d.response, false)
	if err != nil {
		return x.fail(status.Error(13, err.Error()))
	}
	m.headers = h
	if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		m.headers = m.headers.del("content-length")
		m.replaced = true
		if bm := cr.GetBodyMutation(); bm != nil {
			switch b := bm.Mutation.(type) {
			case *extprocv3.BodyMutation_Body:
				m.body = b.Body
			case *extprocv3.BodyMutation_ClearBody:
				m.body = nil
			}
		}
		m.trailers = nil
		return nil
	}
	x.override(resp.GetModeOverride())
	return nil
}

// removesContentLength reports whether Envoy drops content-length for this body mode.
func (x *extProcRun) removesContentLength(d extProcDirection) bool {
	switch x.bodyMode(d) {
	case filterv3.ProcessingMode_STREAMED, filterv3.ProcessingMode_FULL_DUPLEX_STREAMED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		return true
	case filterv3.ProcessingMode_BUFFERED:
		return x.headerMode(d) == filterv3.ProcessingMode_SKIP
	}
	return false
}

// processBody runs the body through the processor. For the response
// direction in STREAMED mode the headers are already downstream when it
// runs; an outcome then means a reset.
func (x *extProcRun) processBody(d extProcDirection, m *extProcMessage) *extProcOutcome {
	if m.replaced || !x.active || !x.hasBody(d, m) {
		return nil
	}
	switch x.bodyMode(d) {
	case filterv3.ProcessingMode_NONE:
		return nil
	case filterv3.ProcessingMode_BUFFERED:
		if len(m.body) > x.cfg.BufferLimit {
			x.active = false
			if d.response {
				return &extProcOutcome{status: http.StatusInternalServerError, details: "response_payload_too_large"}
			}
			return &extProcOutcome{status: http.StatusRequestEntityTooLarge, details: "request_payload_too_large"}
		}
		if err := x.send(d.bodyMsg(m.body, m.trailers == nil)); err != nil {
			return x.fail(err)
		}
		resp, err := x.await()
		if err != nil {
			return x.fail(err)
		}
		if ir, ok := resp.Response.(*extprocv3.ProcessingResponse_ImmediateResponse); ok {
			return x.immediate(ir.ImmediateResponse)
		}
		cr, ok := d.bodyReply(resp)
		if !ok {
			return x.fail(errExtProcSpurious)
		}
		// Headers are still held: header mutations apply.
		h, err := x.mutate(m.headers, cr.GetHeaderMutation(), d.response, false)
		if err != nil {
			return x.fail(status.Error(13, err.Error()))
		}
		m.headers = h
		if bm := cr.GetBodyMutation(); bm != nil {
			switch b := bm.Mutation.(type) {
			case *extprocv3.BodyMutation_Body:
				m.body = b.Body
			case *extprocv3.BodyMutation_ClearBody:
				m.body = nil
			case *extprocv3.BodyMutation_StreamedResponse:
				return x.fail(errExtProcSpurious)
			}
			if cl, ok := m.headers.get("content-length"); ok && cl != strconv.Itoa(len(m.body)) {
				x.active = false
				x.cancel()
				return &extProcOutcome{status: x.cfg.StatusOnError, details: "ext_proc_error_mismatched_content_length"}
			}
		}
		return nil
	case filterv3.ProcessingMode_STREAMED:
		chunks := extProcChunks(m.body, x.cfg.ChunkSize)
		for i, c := range chunks {
			eos := i == len(chunks)-1 && m.trailers == nil
			if err := x.send(d.bodyMsg(c, eos)); err != nil {
				return x.fail(err)
			}
		}
		var out []byte
		for i := range chunks {
			resp, err := x.await()
			if err != nil {
				if o := x.fail(err); o != nil {
					m.body = out
					return o
				}
				// Continue unprocessed with the remaining chunks.
				for _, c := range chunks[i:] {
					out = append(out, c...)
				}
				m.body = out
				return nil
			}
			if ir, ok := resp.Response.(*extprocv3.ProcessingResponse_ImmediateResponse); ok {
				o := x.immediate(ir.ImmediateResponse)
				if d.response {
					m.body = out
				}
				return o
			}
			cr, ok := d.bodyReply(resp)
			if !ok {
				if o := x.fail(errExtProcSpurious); o != nil {
					m.body = out
					return o
				}
				for _, c := range chunks[i:] {
					out = append(out, c...)
				}
				m.body = out
				return nil
			}
			c := chunks[i]
			if bm := cr.GetBodyMutation(); bm != nil {
				switch b := bm.Mutation.(type) {
				case *extprocv3.BodyMutation_Body:
					c = b.Body
				case *extprocv3.BodyMutation_ClearBody:
					c = nil
				case *extprocv3.BodyMutation_StreamedResponse:
					if o := x.fail(errExtProcSpurious); o != nil {
						m.body = out
						return o
					}
				}
			}
			// Header mutations in streamed body replies are ignored.
			out = append(out, c...)
		}
		m.body = out
		return nil
	default:
		// BUFFERED_PARTIAL and FULL_DUPLEX_STREAMED are not modelled.
		x.active = false
		return &extProcOutcome{status: http.StatusInternalServerError, details: "standin_body_mode_not_modelled"}
	}
}

// processTrailers sends trailers when configured and present.
func (x *extProcRun) processTrailers(d extProcDirection, m *extProcMessage) *extProcOutcome {
	if m.replaced || !x.active || m.trailers == nil || x.trailerMode(d) != filterv3.ProcessingMode_SEND {
		return nil
	}
	if err := x.send(d.trailersMsg(m.trailers)); err != nil {
		return x.fail(err)
	}
	resp, err := x.await()
	if err != nil {
		return x.fail(err)
	}
	if ir, ok := resp.Response.(*extprocv3.ProcessingResponse_ImmediateResponse); ok {
		return x.immediate(ir.ImmediateResponse)
	}
	hm, ok := d.trailersReply(resp)
	if !ok {
		return x.fail(errExtProcSpurious)
	}
	t, err := x.mutate(m.trailers, hm, false, false)
	if err != nil {
		return x.fail(status.Error(13, err.Error()))
	}
	m.trailers = t
	return nil
}

func extProcChunks(b []byte, size int) [][]byte {
	if len(b) == 0 {
		return [][]byte{nil}
	}
	var out [][]byte
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func (o *extProcOutcome) result() *ExtProcResult {
	h := http.Header{}
	for _, e := range o.header {
		if !strings.HasPrefix(e[0], ":") {
			h.Add(e[0], e[1])
		}
	}
	if h.Get("Content-Type") == "" && len(o.body) > 0 {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(o.body)))
	return &ExtProcResult{Status: o.status, Header: h, Body: o.body, LocalReply: true, Details: o.details}
}

func (x *extProcRun) do(r *http.Request, upstream http.Handler) *ExtProcResult {
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
	}
	var trailers extProcHeaders
	for k, vs := range r.Trailer {
		for _, v := range vs {
			trailers = append(trailers, [2]string{strings.ToLower(k), v})
		}
	}
	reqMsg := &extProcMessage{headers: extProcHeaders(EnvoyHeaders(r)), body: reqBody, trailers: trailers}
	dReq := extProcDirection{}
	if o := x.processHeaders(dReq, reqMsg); o != nil {
		return o.result()
	}
	if x.removesContentLength(dReq) {
		reqMsg.headers = reqMsg.headers.del("content-length")
	}
	if o := x.processBody(dReq, reqMsg); o != nil {
		return o.result()
	}
	if o := x.processTrailers(dReq, reqMsg); o != nil {
		return o.result()
	}

	// The upstream.
	up := x.upstreamRequest(r, reqMsg)
	rec := httptest.NewRecorder()
	upstream.ServeHTTP(rec, up)
	ur := rec.Result()
	respBody, _ := io.ReadAll(ur.Body)
	if up.Method == http.MethodHead {
		respBody = nil
	}
	respMsg := &extProcMessage{headers: extProcHeaders{{":status", strconv.Itoa(ur.StatusCode)}}, body: respBody}
	keys := make([]string, 0, len(ur.Header))
	for k := range ur.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range ur.Header[k] {
			respMsg.headers = append(respMsg.headers, [2]string{strings.ToLower(k), v})
		}
	}
	for k, vs := range ur.Trailer {
		for _, v := range vs {
			respMsg.trailers = append(respMsg.trailers, [2]string{strings.ToLower(k), v})
		}
	}
	res := &ExtProcResult{Upstream: up, UpstreamBody: reqMsg.body}
	dResp := extProcDirection{response: true}
	if o := x.processHeaders(dResp, respMsg); o != nil {
		out := o.result()
		out.Upstream, out.UpstreamBody = res.Upstream, res.UpstreamBody
		return out
	}
	if x.removesContentLength(dResp) {
		respMsg.headers = respMsg.headers.del("content-length")
	}
	// In BUFFERED mode with headers SEND the headers wait for the body;
	// otherwise they go downstream now.
	held := x.active && !respMsg.replaced && x.hasBody(dResp, respMsg) && x.bodyMode(dResp) == filterv3.ProcessingMode_BUFFERED &&
		x.headerMode(dResp) == filterv3.ProcessingMode_SEND
	if o := x.processBody(dResp, respMsg); o != nil {
		if held {
			out := o.result()
			out.Upstream, out.UpstreamBody = res.Upstream, res.UpstreamBody
			return out
		}
		x.fill(res, respMsg)
		res.Reset = true
		res.Details = o.details
		return res
	}
	if o := x.processTrailers(dResp, respMsg); o != nil {
		x.fill(res, respMsg)
		res.Reset = true
		res.Details = o.details
		return res
	}
	x.fill(res, respMsg)
	return res
}

// fill copies the response message into the result.
func (x *extProcRun) fill(res *ExtProcResult, m *extProcMessage) {
	res.Header = http.Header{}
	for _, e := range m.headers {
		if e[0] == ":status" {
			res.Status, _ = strconv.Atoi(e[1])
			continue
		}
		if strings.HasPrefix(e[0], ":") {
			continue
		}
		res.Header.Add(e[0], e[1])
	}
	res.Body = m.body
	if m.trailers != nil {
		res.Trailer = http.Header{}
		for _, e := range m.trailers {
			res.Trailer.Add(e[0], e[1])
		}
	}
}

// upstreamRequest builds the request the upstream receives.
func (x *extProcRun) upstreamRequest(r *http.Request, m *extProcMessage) *http.Request {
	up := r.Clone(r.Context())
	up.Header = http.Header{}
	for _, e := range m.headers {
		switch e[0] {
		case ":path":
			up.RequestURI = e[1]
			if u, err := url.ParseRequestURI(e[1]); err == nil {
				u.Scheme, u.Host = r.URL.Scheme, r.URL.Host
				up.URL = u
			}
		case ":method":
			up.Method = e[1]
		case ":authority":
			up.Host = e[1]
		case ":scheme":
		default:
			up.Header.Add(e[0], e[1])
		}
	}
	up.Body = io.NopCloser(bytes.NewReader(m.body))
	up.ContentLength = int64(len(m.body))
	if up.ContentLength == 0 {
		up.Body = http.NoBody
	}
	return up
}
