package extproc

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlockhq/airlock/internal/envoyhdr"
	"github.com/airlockhq/airlock/masking"
)

// What a stream that masks a body leases from the budget: the masker's
// state (a text masker holds about 100 KiB), and room for one reply being
// built while the previous one is written to Envoy. Inflation adds
// inflaterCost.
const (
	maskerCost = 128 << 10
	streamKeep = maskerCost + 2*(128<<10)
	// inflateBlock is the size of the output buffers an inflated body is
	// masked into.
	inflateBlock = 256 << 10
)

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

// textMasker is the masker of the response's profile for headers and gRPC
// messages.
func (st *stream) textMasker() (*masking.TextMasker, error) {
	if st.tm != nil {
		return st.tm, nil
	}
	if len(st.meta.Masking) == 0 {
		st.tm = st.def
		return st.tm, nil
	}
	tm, err := st.engine.TextMasker(masking.ProfileFor(st.meta.Masking))
	if err != nil {
		return nil, err
	}
	st.tm = tm
	return tm, nil
}

// mutation builds a header mutation; removing a header drops any set of it.
type mutation struct{ m *extprocv3.HeaderMutation }

func (m mutation) remove(k string) {
	m.m.RemoveHeaders = append(m.m.RemoveHeaders, k)
	sets := m.m.SetHeaders[:0]
	for _, o := range m.m.SetHeaders {
		if o.GetHeader().GetKey() != k {
			sets = append(sets, o)
		}
	}
	m.m.SetHeaders = sets
}

func (st *stream) responseHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	st.sawRespHdrs = true
	hm := envoyhdr.Map(h.GetHeaders())
	st.status, _ = strconv.Atoi(hm[":status"])
	ct := hm["content-type"]
	enc := strings.ToLower(strings.TrimSpace(hm["content-encoding"]))
	grpcEnc := strings.ToLower(strings.TrimSpace(hm["grpc-encoding"]))

	tm, err := st.textMasker()
	if err != nil {
		st.log().Error("masking profile does not compile", "error", err)
		return st.refuse("airlock: the masking rules for this request are invalid: " + err.Error())
	}
	hmask, err := maskHeaders(tm, h.GetHeaders().GetHeaders(), &st.scratch)
	if err != nil {
		st.log().Warn("refusing a response whose headers cannot be masked", "error", err)
		return st.refuse("airlock: " + strings.TrimPrefix(err.Error(), "extproc: ") + "; the response was not passed on")
	}
	st.headerMasked = hmask.masked
	st.respHeaders = redacted(applyMasking(hm, h.GetHeaders().GetHeaders(), hmask))
	mut := mutation{&extprocv3.HeaderMutation{SetHeaders: hmask.set, RemoveHeaders: hmask.remove}}
	hr := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: mut.m}}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}}

	noBody := h.GetEndOfStream() || st.method == "HEAD" || st.status == 204 || st.status == 304 ||
		(st.status >= 100 && st.status < 200) || hm["content-length"] == "0"
	st.noBody = noBody
	pass := false
	for _, p := range st.s.opts.PassContentTypes {
		if p != "" && strings.HasPrefix(strings.ToLower(ct), strings.ToLower(p)) {
			pass = true
		}
	}
	if noBody || pass {
		// Nothing to mask (or the operator chose not to inspect this media
		// type): let Envoy skip the body (honoured only with
		// allow_mode_override; otherwise body messages pass untouched).
		st.passBody = true
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_NONE}
		st.logMasked()
		if h.GetEndOfStream() {
			if err := st.recordResponse(); err != nil {
				return st.unavailable("airlock: unavailable: the session recorder cannot store this response, so it is withheld; retry later.")
			}
		}
		return resp
	}

	keep := int64(streamKeep)
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		keep += inflaterCost
	default:
		st.log().Warn("refusing a response whose encoding cannot be inspected", "content_encoding", enc)
		return st.refuse(fmt.Sprintf("airlock: the response is encoded with %q, which airlock cannot inspect for secrets; it was not passed on", enc))
	}
	gk := grpcKind(ct)
	if gk == grpcWebText {
		return st.refuse("airlock: the response is base64 gRPC-Web (application/grpc-web-text), which airlock cannot inspect for secrets; it was not passed on")
	}
	if gk != 0 {
		switch grpcEnc {
		case "", "identity":
		case "gzip", "deflate":
			st.grpcEncoding = grpcEnc
		default:
			st.log().Warn("refusing a gRPC response whose messages cannot be inspected", "grpc_encoding", grpcEnc)
			return st.refuse(fmt.Sprintf("airlock: the gRPC response is compressed with %q, which airlock cannot inspect for secrets; it was not passed on", grpcEnc))
		}
	}

	sse, mcpBody := isMCPBody(ct)
	mcpBody = mcpBody && gk == 0 && st.meta.MCP != nil
	if rule := fieldRule(st.meta.Masking); rule != "" && !mcpBody && (gk != 0 || bodyKind(ct) != masking.JSON) {
		// Field rules read JSON: a body in another format would pass with
		// only the detectors run over it. An MCP response's messages are
		// JSON, read one by one, an SSE stream's too.
		what := ct
		if what == "" {
			what = "a body without a content type"
		}
		return st.refuse(fmt.Sprintf("airlock: masking rule %s masks fields of a JSON response, but this response is %s, which airlock cannot read field by field; it was not passed on. Ask for the JSON form (alt=json)", rule, what))
	}

	l, ok := newLease(st.s.budget, keep)
	if !ok {
		st.log().Warn("refusing a response: the masking memory budget is in use", "in_use", st.s.budget.InUse(), "limit", st.s.budget.Limit())
		return st.overBudget()
	}
	st.lease = l
	st.out.l = l
	// The masker's and decompressor's state, held until the stream ends
	// (within keep: cannot fail).
	_ = l.chargeState(keep - (streamKeep - maskerCost))
	if enc != "" && enc != "identity" {
		st.inflate = newInflater(enc, st.s.opts.MaxDecompressedBytes)
		st.blockSize = inflateBlock
		mut.remove("content-encoding")
		delete(st.respHeaders, "content-encoding")
	}
	if gk != 0 {
		st.grpc = &grpcFramer{l: l, web: gk == grpcWeb, limit: st.s.opts.MaxDecompressedBytes}
		st.feed = st.grpcPiece
		if grpcEnc != "" {
			// Messages go out uncompressed.
			mut.remove("grpc-encoding")
			delete(st.respHeaders, "grpc-encoding")
		}
		// Ask for the trailers, to mask grpc-message.
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: st.envoyBodyMode(), ResponseTrailerMode: filterv3.ProcessingMode_SEND}
	} else if mcpBody {
		if err := st.startMCP(sse); err != nil {
			st.log().Error("masking profile does not compile", "error", err)
			return st.refuse("airlock: the masking rules for this request are invalid: " + err.Error())
		}
	} else {
		masker, err := st.engine.NewStream(masking.ProfileFor(st.meta.Masking), bodyKind(ct))
		if err != nil {
			st.log().Error("masking profile does not compile", "error", err)
			return st.refuse("airlock: the masking rules for this request are invalid: " + err.Error())
		}
		st.masker = masker
		st.feed = st.maskPiece
	}
	mut.remove("content-length")
	delete(st.respHeaders, "content-length")
	return resp
}

func (st *stream) envoyBodyMode() filterv3.ProcessingMode_BodySendMode {
	if st.bodyMode == BodyModeBuffered {
		return filterv3.ProcessingMode_BUFFERED
	}
	return filterv3.ProcessingMode_STREAMED
}

func (st *stream) responseBody(b *extprocv3.HttpBody) (any, error) {
	cr := &extprocv3.CommonResponse{}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	if st.passBody || st.feed == nil {
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
	if err := st.maskChunk(b.GetBody(), b.GetEndOfStream()); err != nil {
		st.out.free()
		if st.bodyMode == BodyModeBuffered {
			// Envoy still holds the response headers: answer with an error.
			st.log().Warn("masking failed; refusing the response", "error", err)
			if errors.Is(err, errBudget) {
				return st.overBudget(), nil
			}
			return st.refuse("airlock: the response could not be masked: " + strings.TrimPrefix(err.Error(), "extproc: ")), nil
		}
		return nil, err
	}
	if st.out.equal(b.GetBody()) {
		// The chunk goes out as Envoy holds it (nothing masked, and the
		// bytes held back, if any, are the same as those released): a
		// reply without a mutation says so without sending it back.
		st.out.free()
		return resp, nil
	}
	if st.out.n == 0 {
		st.out.free()
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}
		return resp, nil
	}
	st.reply.out = &st.out
	st.replying = true
	return &st.reply, nil
}

func (st *stream) responseTrailers(t *extprocv3.HttpTrailers) (any, error) {
	if err := st.finishBody(); err != nil {
		return nil, err
	}
	tr := &extprocv3.TrailersResponse{}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: tr}}
	tm, err := st.textMasker()
	if err != nil {
		return nil, err
	}
	m, err := maskHeaders(tm, t.GetTrailers().GetHeaders(), &st.scratch)
	if err != nil {
		return nil, err
	}
	if m.changed() {
		st.log().Info("masked response trailers", "masked", m.masked, "gcp_method", st.meta.GCPMethod)
		tr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: m.set, RemoveHeaders: m.remove}
	}
	return resp, nil
}

// maskChunk masks one chunk into st.out; with eos it flushes the masker.
func (st *stream) maskChunk(chunk []byte, eos bool) error {
	if st.inflate != nil {
		if err := st.inflate.Write(chunk, st.feed); err != nil {
			return err
		}
		if eos {
			if err := st.inflate.Close(st.feed); err != nil {
				return err
			}
		}
	} else if len(chunk) > 0 {
		if err := st.feed(chunk); err != nil {
			return err
		}
	}
	if eos {
		if err := st.closeBody(); err != nil {
			return err
		}
	}
	st.total += int64(st.out.n)
	if room := st.s.opts.RecordBodyBytes - len(st.record); room > 0 && st.s.opts.Recorder != nil {
		st.record = st.out.appendTo(st.record, room)
	}
	if eos {
		st.logMasked()
		if err := st.recordResponse(); err != nil {
			return err
		}
	}
	return nil
}

// maskPiece masks bytes of a text or JSON body into st.out.
func (st *stream) maskPiece(p []byte) error {
	b, err := st.out.room(len(p)+len(p)/16+64, st.blockSize)
	if err != nil {
		return err
	}
	out, err := st.masker.Write(*b, p)
	if err != nil {
		return err
	}
	return st.out.commit(b, out)
}

// grpcPiece hands bytes of a gRPC body to the framer.
func (st *stream) grpcPiece(p []byte) error {
	return st.grpc.write(p, st.grpcMessage)
}

// closeBody ends the body: the masker releases what it held back, and a
// gRPC body must end between messages.
func (st *stream) closeBody() error {
	if st.grpc != nil {
		return st.grpc.close()
	}
	if st.mcp != nil {
		return st.mcpClose()
	}
	b, err := st.out.room(32<<10, 0)
	if err != nil {
		return err
	}
	out, err := st.masker.Close(*b)
	if err != nil {
		return err
	}
	return st.out.commit(b, out)
}

// finishBody runs when trailers arrive: the last body chunk was not
// marked end_of_stream.
func (st *stream) finishBody() error {
	if st.feed == nil || st.passBody || st.recorded {
		return st.recordResponse()
	}
	// Bytes still held cannot be sent with trailers; a body that ends this
	// way is refused rather than truncated silently.
	err := st.maskChunk(nil, true)
	n := st.out.n
	st.out.free()
	if err != nil {
		return err
	}
	if n > 0 {
		return errors.New("extproc: masked body bytes pending when trailers arrived")
	}
	return nil
}

func (st *stream) logMasked() {
	n := st.headerMasked + st.grpcMasked
	if st.masker != nil {
		n += st.masker.Masked()
	}
	if st.mcp != nil {
		n += st.mcp.masker.Masked()
		if r := st.mcp.masker.Removed(); r > 0 {
			st.log().Info("tools/list filtered", "removed", r, "server", st.meta.MCP.Server)
		}
	}
	if n > 0 {
		st.log().Info("masked response", "masked", n, "headers", st.headerMasked, "gcp_method", st.meta.GCPMethod, "status", st.status)
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

// fieldRule names the first selected masking rule with field rules
// ("policy/name"), or "".
func fieldRule(specs []masking.Rule) string {
	for _, m := range specs {
		if len(m.Fields) > 0 {
			return m.Policy + "/" + m.Name
		}
	}
	return ""
}
