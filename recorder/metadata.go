package recorder

import (
	"context"

	"github.com/airlockhq/airlock/authz"
)

// RequestHeaders records the request headers ext_proc saw for an allowed
// request (pseudo-headers give the method, host and path). It implements
// the ext_proc server's Recorder: a failure is logged and counted in
// Stats.Failed; use RecordRequestHeaders to act on it.
func (r *Recorder) RequestHeaders(ctx context.Context, meta authz.Metadata, headers map[string]string) {
	if err := r.RecordRequestHeaders(ctx, meta, headers); err != nil {
		r.failed(KindRequest, meta.RequestID, err)
	}
}

// RecordRequestHeaders is RequestHeaders returning the error: nil once
// the event is durable in the spool.
func (r *Recorder) RecordRequestHeaders(ctx context.Context, meta authz.Metadata, headers map[string]string) error {
	return r.Request(ctx, meta.SessionID, meta.RequestID, RequestEvent{
		Subject:   meta.Subject,
		Actor:     meta.Actor,
		GCPMethod: meta.GCPMethod,
		Method:    headers[":method"],
		Host:      headers[":authority"],
		Path:      headers[":path"],
		Headers:   headers,
	})
}

// Response records the response as the agent received it: maskedBody is
// already masked (it is truncated to MaxBodyBytes) and totalBytes is the
// size of the whole body. It implements the ext_proc server's Recorder: a
// failure is logged and counted in Stats.Failed; use RecordResponse to act
// on it.
func (r *Recorder) Response(ctx context.Context, meta authz.Metadata, status int, headers map[string]string, maskedBody []byte, totalBytes int64) {
	if err := r.RecordResponse(ctx, meta, status, headers, maskedBody, totalBytes); err != nil {
		r.failed(KindResponse, meta.RequestID, err)
	}
}

// RecordResponse is Response returning the error: nil once the event is
// durable in the spool.
func (r *Recorder) RecordResponse(ctx context.Context, meta authz.Metadata, status int, headers map[string]string, maskedBody []byte, totalBytes int64) error {
	return r.record(ctx, meta.SessionID, &Event{Kind: KindResponse, RequestID: meta.RequestID, Response: &ResponseEvent{
		Subject:     meta.Subject,
		GCPMethod:   meta.GCPMethod,
		Status:      status,
		Headers:     MaskHeaders(headers, nil),
		BodyExcerpt: excerpt(maskedBody, r.opts.MaxBodyBytes),
		TotalBytes:  totalBytes,
	}})
}

func (r *Recorder) failed(kind, requestID string, err error) {
	r.failures.Add(1)
	r.log.Error("recorder: event not recorded", "kind", kind, "request_id", requestID, "err", err)
}
