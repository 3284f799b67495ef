package recorder

import (
	"context"

	"github.com/airlockhq/airlock/handoff"
)

// RecordRequestHeaders records the request headers ext_proc saw for an
// allowed request (pseudo-headers give the method, host and path), with
// the decision ext_authz handed over in meta; nil once the event is durable
// in the spool. The event alone proves what Envoy forwarded and why, even
// when the Check ran on another replica whose decision event was lost. It
// implements the ext_proc server's Recorder, which refuses the request on
// an error (before Envoy forwards it); failures are also logged and counted
// in Stats.Failed.
func (r *Recorder) RecordRequestHeaders(ctx context.Context, meta handoff.Metadata, headers map[string]string) error {
	err := r.Request(ctx, meta.SessionID, meta.RequestID, RequestEvent{
		Subject:   meta.Subject,
		Actor:     meta.Actor,
		GCPMethod: meta.GCPMethod,
		Decision:  meta.Decision,
		Rules:     meta.Rules,
		Method:    headers[":method"],
		Host:      headers[":authority"],
		Path:      headers[":path"],
		Headers:   headers,
	})
	if err != nil {
		r.failed(KindRequest, meta.RequestID, err)
	}
	return err
}

// RecordResponse records the response as the agent received it: maskedBody
// is already masked (it is truncated to MaxBodyBytes) and totalBytes is the
// size of the whole body; nil once the event is written to the spool (a
// killed process loses none; it is synced with the next group commit: the
// response changes nothing at Google). It implements the ext_proc server's
// Recorder, which fails the response closed on an error; failures are also
// logged and counted in Stats.Failed.
func (r *Recorder) RecordResponse(ctx context.Context, meta handoff.Metadata, status int, headers map[string]string, maskedBody []byte, totalBytes int64) error {
	hs, _, _ := r.headers.maskHeaders(headers, "", "")
	err := r.record(ctx, meta.SessionID, &Event{Kind: KindResponse, RequestID: meta.RequestID, Response: &ResponseEvent{
		Subject:     meta.Subject,
		GCPMethod:   meta.GCPMethod,
		Status:      status,
		headers:     hs,
		BodyExcerpt: excerpt(maskedBody, r.opts.MaxBodyBytes),
		TotalBytes:  totalBytes,
	}}, waitWritten)
	if err != nil {
		r.failed(KindResponse, meta.RequestID, err)
	}
	return err
}

func (r *Recorder) failed(kind, requestID string, err error) {
	r.failures.Add(1)
	r.log.Error("recorder: event not recorded", "kind", kind, "request_id", requestID, "err", err)
}
