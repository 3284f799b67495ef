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
// for the request (handoff.Metadata); without it every response gets
// masking.DefaultProfile.
//
// Behaviour per response:
//   - The request gets accept-encoding: identity, so the upstream sends an
//     uncompressed body (and a gRPC request grpc-accept-encoding: identity).
//     A gzip or deflate body is still inflated, streaming: each piece is
//     masked as it is produced, never a whole chunk's worth at once; a body
//     that inflates past Options.MaxDecompressedBytes ends in an error, and
//     content-encoding is removed. Any other encoding is refused with a
//     502 before a byte is sent.
//   - Response headers are masked on every response that has them (HEAD,
//     204, 304, errors and uninspected media types included), with the
//     same profile as the body, through a header mutation (raw_value). A
//     value keeps the label in place of the secret ("[MASKED:gcp_api_key]");
//     a secret in a header's name (an x-goog-meta-* key) removes the
//     header. Never touched: pseudo-headers and the headers HTTP or Google
//     define (content-length, transfer-encoding, connection, date,
//     last-modified, expires, age, etag, vary, accept-ranges,
//     content-range, x-goog-generation, x-goog-metageneration, x-goog-hash,
//     x-goog-stored-content-length, x-goog-storage-class, grpc-status,
//     grpc-encoding, grpc-accept-encoding; see untouchedHeaders).
//     content-type is masked like the rest: Cloud Storage lets an uploader
//     choose it, and no real media type looks like a secret. A secret in a
//     header Envoy will not let ext_proc rewrite (host, x-envoy-*) refuses
//     the response. Binary headers (-bin) are decoded and their bytes
//     masked. Trailers, when Envoy sends them, are masked the same way.
//   - content-length is removed whenever the body is processed, since
//     masking changes its length.
//   - Bodies that cannot exist (HEAD, 1xx, 204, 304, content-length 0) are
//     skipped with a mode_override; every other body is scanned, whatever its
//     content type (an object's type is chosen by whoever uploaded it),
//     unless Options.PassContentTypes lists it. JSON content types are
//     tokenized (field rules and detectors); gRPC bodies are split into
//     messages; everything else is scanned as text by detectors.
//   - gRPC (application/grpc, application/grpc-web): each message is read
//     whole (at most Options.MaxDecompressedBytes), inflated when its
//     compressed flag is set (grpc-encoding gzip or deflate; any other
//     grpc-encoding, and the base64 application/grpc-web-text, are refused
//     with a 502), and masked without its schema by the detectors
//     (masking.TextMasker.MaskProtobuf): secrets in strings and bytes at any
//     depth are replaced and the lengths around them rewritten, a message
//     that does not parse or whose secret cannot be cut out fails the
//     stream. Messages go out uncompressed and grpc-encoding is removed.
//     airlock asks for the trailers (mode_override, response_trailer_mode
//     SEND) to mask grpc-message; without allow_mode_override Envoy does not
//     send them.
//   - Memory: every buffer that holds response bytes (masked output waiting
//     for Envoy, a gRPC message, decompressor and masker state) is charged
//     to one process-wide Budget (Options.MemoryBudgetBytes). A stream
//     leases its share when its response headers arrive; one that cannot
//     is refused with a 503 in Google's error shape before any byte is
//     sent, and one that cannot grow later (a body inflating to more than
//     the budget spares), after waiting up to 100 ms for memory other
//     streams give back, ends with a gRPC error, a reset. Everything
//     returns to the budget when the stream ends, however it ends; masked
//     output handed to gRPC returns as gRPC writes it.
//   - Failing closed: before the response headers are sent (errors at
//     response headers, or any error in BUFFERED mode) the agent gets a 502
//     (503 for the memory budget) with a Google-style JSON error; once a
//     STREAMED body is under way the stream ends with a gRPC error, which
//     Envoy turns into a reset. The agent never receives unmasked bytes.
//   - With response trailers present and response_trailer_mode SKIP, Envoy
//     never marks the last body chunk end_of_stream, so the bytes the masker
//     holds back (at most one carried tail) cannot be flushed; with SEND the
//     stream then fails closed. REST responses from Google carry no
//     trailers; a gRPC body holds nothing back between messages.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/internal/envoyhdr"
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
	RecordRequestHeaders(ctx context.Context, meta handoff.Metadata, headers map[string]string) error
	// RecordResponse is called once per response that had headers, before
	// its last bytes are released: headers are as the agent receives them
	// (masked), maskedBody holds the first bytes of the masked body (at
	// most Options.RecordBodyBytes) and totalBytes the length of the whole
	// masked body. An error fails the response closed: a 503 when no byte
	// went out yet, else a reset.
	RecordResponse(ctx context.Context, meta handoff.Metadata, status int, headers map[string]string, maskedBody []byte, totalBytes int64) error
}

// Options configure a Server.
type Options struct {
	// BodyMode is the response body mode Envoy is configured with when its
	// first message does not say: "streamed" (default) or "buffered".
	BodyMode string
	// MaxDecompressedBytes bounds a compressed response body once inflated,
	// and each gRPC message (gzip bombs); default 64 MiB. A larger body
	// ends in an error.
	MaxDecompressedBytes int64
	// MemoryBudgetBytes bounds the memory all streams together hold for
	// masking and inflation (see Budget); default 256 MiB.
	MemoryBudgetBytes int64
	// RecordBodyBytes bounds the masked body handed to the Recorder;
	// default 64 KiB.
	RecordBodyBytes int
	// PassContentTypes lists media-type prefixes (e.g. "video/") whose
	// bodies are not inspected (their headers still are). Empty by
	// default: every body is scanned, since an object's content type is
	// chosen by whoever uploaded it.
	PassContentTypes []string
	// Engine holds the detectors; nil means built-in detectors only.
	// Replace it at run time with Server.SetEngine.
	Engine *masking.Engine
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Recorder may be nil.
	Recorder Recorder
	// MCP filters tools/list results and learns the tools servers declare;
	// nil filters nothing (MCP responses are masked all the same).
	MCP MCPPolicy
	// MCPMaxMessageBytes bounds one JSON-RPC message of an MCP response
	// (a JSON body, an SSE event); default 16 MiB.
	MCPMaxMessageBytes int
}

// Server implements the ext_proc v3 ExternalProcessor service.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	opts   Options
	log    *slog.Logger
	budget *Budget
	engine atomic.Pointer[engineState]
}

// engineState is an engine with the masker of the default profile, which
// most responses' headers are masked with.
type engineState struct {
	e   *masking.Engine
	def *masking.TextMasker
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
	if opts.MemoryBudgetBytes <= 0 {
		opts.MemoryBudgetBytes = DefaultMemoryBudget
	}
	if opts.RecordBodyBytes <= 0 {
		opts.RecordBodyBytes = 64 << 10
	}
	if opts.MCPMaxMessageBytes <= 0 {
		opts.MCPMaxMessageBytes = defaultMCPMaxMessageBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "extproc"), budget: NewBudget(opts.MemoryBudgetBytes)}
	e := opts.Engine
	if e == nil {
		var err error
		if e, err = masking.NewEngine(nil); err != nil {
			return nil, fmt.Errorf("extproc: %w", err)
		}
	}
	if err := s.setEngine(e); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) setEngine(e *masking.Engine) error {
	def, err := e.TextMasker(masking.DefaultProfile())
	if err != nil {
		return fmt.Errorf("extproc: default profile: %w", err)
	}
	s.engine.Store(&engineState{e: e, def: def})
	return nil
}

// SetEngine swaps the detectors (policy reload); streams already running
// keep the engine they started with.
func (s *Server) SetEngine(e *masking.Engine) {
	if e != nil {
		if err := s.setEngine(e); err != nil {
			s.log.Error("keeping the previous detectors", "error", err)
		}
	}
}

// Budget is the server's memory budget, for metrics.
func (s *Server) Budget() *Budget { return s.budget }

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	extprocv3.RegisterExternalProcessorServer(r, s)
}

// Process serves one HTTP stream.
func (s *Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := srv.Context()
	es := s.engine.Load()
	st := &stream{s: s, ctx: ctx, engine: es.e, def: es.def, bodyMode: s.opts.BodyMode}
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
			return status.Error(codes.Internal, "airlock: "+strings.TrimPrefix(err.Error(), "extproc: "))
		}
		if resp == nil {
			continue
		}
		// SendMsg has marshalled resp when it returns; a bodyReply's
		// buffers now belong to gRPC, or come back here.
		err = srv.SendMsg(resp)
		st.sent()
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
	def      *masking.TextMasker
	meta     handoff.Metadata
	metaSeen bool
	bodyMode string
	method   string

	status      int
	respHeaders map[string]string
	// tm masks headers and gRPC messages with the response's profile.
	tm *masking.TextMasker
	// lease is the stream's share of the memory budget, from the response
	// headers on when a body is masked.
	lease *lease
	// feed takes the body's bytes (inflated when content-encoded): the
	// masker's or the gRPC framer's.
	feed func([]byte) error
	// masker masks a text or JSON body; grpc splits a gRPC one; mcp
	// reads an MCP response message by message.
	masker       *masking.Stream
	mcp          *mcpStream
	grpc         *grpcFramer
	grpcEncoding string
	grpcMasked   int
	inflate      *inflater
	// out collects the masked bytes of the chunk being answered, and reply
	// carries them to Envoy.
	out      output
	reply    bodyReply
	replying bool
	// blockSize is the size of the output buffers taken for inflated
	// pieces, which are many per chunk.
	blockSize int

	headerMasked int
	scratch      []byte
	passBody     bool
	noBody       bool
	record       []byte
	total        int64
	recorded     bool
	sawRespHdrs  bool
}

func (st *stream) log() *slog.Logger {
	l := st.s.log
	if st.meta.RequestID != "" {
		l = l.With("request_id", st.meta.RequestID)
	}
	return l
}

// sent runs after each reply went to gRPC: output gRPC did not take is
// given back.
func (st *stream) sent() {
	if st.replying {
		st.replying = false
		st.out.free()
		st.reply.reset()
	}
}

// end gives everything back to the budget, however the stream ended.
func (st *stream) end() {
	st.sent()
	st.out.free()
	if st.inflate != nil {
		st.inflate.Abort()
	}
	if st.grpc != nil {
		st.grpc.free()
	}
	st.mcpRelease()
	if st.lease != nil {
		st.lease.close()
	}
}

func (st *stream) readMetadata(req *extprocv3.ProcessingRequest) {
	if st.metaSeen || req.GetMetadataContext() == nil {
		return
	}
	if fm := req.GetMetadataContext().GetFilterMetadata()[handoff.MetadataNamespace]; fm != nil {
		st.meta = handoff.MetadataFromMap(fm.AsMap())
		st.metaSeen = true
	}
}

func (st *stream) handle(req *extprocv3.ProcessingRequest) (any, error) {
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
	var resp any
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
		resp, err = st.responseTrailers(r.ResponseTrailers)
	default:
		err = fmt.Errorf("extproc: unexpected processing request %T", req.Request)
	}
	if observe {
		// Envoy ignores replies in observability mode.
		st.sent()
		return nil, nil
	}
	return resp, err
}

func redacted(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if handoff.CredentialHeader(k, v) {
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
	hm := envoyhdr.Map(h.GetHeaders())
	st.method = hm[":method"]
	if rec := st.s.opts.Recorder; rec != nil {
		if err := rec.RecordRequestHeaders(st.ctx, st.meta, redacted(hm)); err != nil {
			st.log().Error("recording the request failed; refusing it", "err", err)
			return st.unavailable("airlock: unavailable: the session recorder cannot store this request, so it is refused; retry later.")
		}
	}
	// Ask the upstream for an uncompressed body so that it can be masked
	// without inflating it.
	set := []*corev3.HeaderValueOption{setHeader("accept-encoding", "identity")}
	if grpcKind(hm["content-type"]) != 0 {
		set = append(set, setHeader("grpc-accept-encoding", "identity"))
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
		Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set}},
	}}}
}

// unavailable answers 503 with a local reply (before any response byte
// went out), in Google's error shape.
func (st *stream) unavailable(msg string) *extprocv3.ProcessingResponse {
	return st.localReply(typev3.StatusCode_ServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "airlock_recording_failed", msg, nil)
}

// overBudget answers 503 when the memory budget cannot spare what the
// response needs.
func (st *stream) overBudget() *extprocv3.ProcessingResponse {
	st.passBody = true
	b := st.s.budget
	msg := fmt.Sprintf("airlock: unavailable: the gateway's memory for masking responses (masking.memory_budget_bytes, %d bytes) is in use by other responses, so this response was withheld; retry later.", b.Limit())
	return st.localReply(typev3.StatusCode_ServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "airlock_memory_budget_exhausted", msg,
		map[string]string{"cause": "masking.memory_budget_bytes"})
}

// refuse answers with a local reply before any response byte went out.
func (st *stream) refuse(msg string) *extprocv3.ProcessingResponse {
	st.passBody = true
	return st.localReply(typev3.StatusCode_BadGateway, "INTERNAL", "MASKING_FAILED", "airlock_masking_failed", msg, nil)
}

// localReply is an ImmediateResponse carrying a Google-style JSON error.
func (st *stream) localReply(code typev3.StatusCode, status, reason, details, msg string, meta map[string]string) *extprocv3.ProcessingResponse {
	md := map[string]string{"request_id": st.meta.RequestID}
	for k, v := range meta {
		md[k] = v
	}
	body := handoff.ErrorBody(int(code), status, msg, reason, md)
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
