package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/recorder"
	"github.com/prometheus/client_golang/prometheus"
)

// recorder opens the session recorder, or returns nil when recording is off.
func (s *server) recorder(ctx context.Context, masker *masking.RequestMasker) (*recorder.Recorder, error) {
	cfg := s.cfg
	if !cfg.Recorder.Enabled {
		s.log.Warn("session recording is off (recorder.enabled: false)")
		return nil, nil
	}
	sink, err := recorder.OpenSink(ctx, cfg.Recorder.Sink, recorder.SinkOptions{})
	if err != nil {
		return nil, fmt.Errorf("config: recorder.sink: %w", err)
	}
	opts := recorderOptions(cfg.Recorder)
	opts.Sink = sink
	// Sessions and segment links are shared through approvals.store's Redis
	// (the tracker falls back to this replica while Redis is down); without
	// Redis they stay in this replica's memory.
	opts.Tracker = s.sessions
	opts.RedisClient = s.redis
	opts.Mask = masker.Value
	opts.Logger = s.log.With("component", "recorder")
	rec, err := recorder.New(ctx, opts)
	if errors.Is(err, recorder.ErrSpoolInUse) {
		return nil, fmt.Errorf("config: recorder.spool: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("config: recorder: %w", err)
	}
	s.closer = append(s.closer, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			s.log.Error("closing the recorder", "err", err)
		}
	})
	s.checks = append(s.checks, healthCheck{"recorder", func(context.Context) error { return rec.Healthy() }})
	if cfg.Recorder.Durability == recorder.DurabilityExtProc {
		s.log.Info("session recording on: an allowed request is made durable at ext_proc's request headers (recorder.durability: extproc); Envoy must run ext_proc on every request it forwards", "sink", cfg.Recorder.Sink)
	} else {
		s.log.Info("session recording on: an allowed Check waits until its decision is durable (recorder.durability: check)", "sink", cfg.Recorder.Sink)
	}
	s.reg.MustRegister(recorderCollector{rec})
	return rec, nil
}

// sinkGuard refuses agent requests that touch the recorder's own sink
// (nil when recording is off or the sink is a local directory).
func sinkGuard(cfg *config.Config) *authz.SinkGuard {
	if !cfg.Recorder.Enabled {
		return nil
	}
	return authz.NewSinkGuard(cfg.Recorder.Sink)
}

// recorderCollector exports the recorder's counters to Prometheus, read
// once per scrape.
type recorderCollector struct{ rec *recorder.Recorder }

// recorderMetrics are the series recorderCollector exports.
var recorderMetrics = []struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(recorder.Stats) int64
}{
	{recorderDesc("events_total", "Session events made durable in the spool."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Events }},
	{recorderDesc("dropped_events_total", "Events dropped because the spool was full (recorder.on_full: drop)."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Dropped }},
	{recorderDesc("failed_events_total", "Request and response events that could not be recorded (the request was failed closed)."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Failed }},
	{recorderDesc("spool_syncs_total", "Group commits of the spool (write plus fdatasync); events_total over this is the events sharing one."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Syncs }},
	{recorderDesc("chunks_uploaded_total", "Compressed chunks uploaded to the sink."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Chunks }},
	{recorderDesc("upload_errors_total", "Failed uploads to the sink (each is retried with backoff)."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.UploadErrors }},
	{recorderDesc("spool_bytes", "Bytes the spool holds on disk (bounded by recorder.spool_max_bytes)."),
		prometheus.GaugeValue, func(s recorder.Stats) int64 { return s.SpoolBytes }},
	{recorderDesc("pending_events", "Events in the spool not yet uploaded to the sink."),
		prometheus.GaugeValue, func(s recorder.Stats) int64 { return s.PendingEvents }},
	{recorderDesc("checkpoints_total", "Signed checkpoints written to the sink."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Checkpoints }},
	{recorderDesc("unauthenticated_events_total", "Events recorded of requests refused before an identity was known."),
		prometheus.CounterValue, func(s recorder.Stats) int64 { return s.Unauthenticated }},
}

// unauthenticatedDropped counts the events of requests refused before an
// identity was known that were not recorded, by reason.
var unauthenticatedDropped = prometheus.NewDesc("airlock_recorder_unauthenticated_dropped_total",
	"Events of requests refused before an identity was known that were not recorded: rate_limited (recorder.unauthenticated.rate of their source), spool_full (their share of the spool), failed.",
	[]string{"reason"}, nil)

func recorderDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("airlock_recorder_"+name, help, nil, nil)
}

func (recorderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range recorderMetrics {
		ch <- m.desc
	}
	ch <- unauthenticatedDropped
}

func (c recorderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.rec.Stats()
	for _, m := range recorderMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value(st)))
	}
	for _, reason := range []string{"rate_limited", "spool_full", "failed"} {
		ch <- prometheus.MustNewConstMetric(unauthenticatedDropped, prometheus.CounterValue, float64(st.UnauthenticatedDropped[reason]), reason)
	}
}

// decisionRecorder turns authz results into recorder events.
type decisionRecorder struct {
	rec    *recorder.Recorder
	masker *masking.RequestMasker
}

var (
	_ authz.Recorder   = decisionRecorder{}
	_ extproc.Recorder = (*recorder.Recorder)(nil)
)

func (d decisionRecorder) RecordDecision(ctx context.Context, r *authz.Result) error {
	if r.Identity.Subject == "" && r.SessionID == "" {
		// Refused before an identity was known: anyone can send these, so
		// nothing is masked or copied here; the recorder keeps a compact
		// event within its source's rate.
		return d.rec.Decision(ctx, unauthenticatedEvent(r))
	}
	e := recorder.DecisionEvent{
		RequestID: r.RequestID,
		SessionID: r.SessionID,
		Subject:   r.Identity.Subject,
		Email:     r.Identity.Email,
		Actor:     r.Identity.Actor,
		Issuer:    r.Identity.Issuer,
		Method:    r.Recognized.Method,
		Host:      r.Recognized.Host,
		Path:      r.Recognized.Path,
		GCPMethod: r.Recognized.Operation.Method,
		Project:   r.Recognized.Operation.Project,
		Resource:  r.Recognized.Operation.Resource,
		Decision:  r.Outcome.String(),
		Policy:    r.Decision.Policy,
		Rule:      r.Decision.Rule,
		Rules:     r.Rules(),
	}
	if r.Refusal != nil {
		e.Message = r.Refusal.Message
		e.ApprovalID = r.Refusal.Metadata["approval_id"]
		e.Reason = refusalReason(r.Refusal)
	}
	if r.Approval != nil {
		e.ApprovalID = r.Approval.ID
	}
	if req := r.Request; req != nil {
		e.Time = req.Time
		e.Source = req.Source
		if req.Mode != authz.ModeEnforce {
			e.Mode = req.Mode.String()
		}
		if e.Method == "" {
			e.Method, e.Host = req.Method, req.Host
			e.Path, _, _ = strings.Cut(req.Path, "?")
		}
		if _, q, ok := strings.Cut(req.Path, "?"); ok {
			e.Query = q
		}
		e.Headers = req.Headers
		// The request's own masking rules, which include the recorder's
		// default profile: the recorder only cuts the result.
		e.Body = r.MaskedBody(d.masker.Body)
		e.BodyMasked, e.BodyBytes = true, int64(len(req.Body))
	}
	return d.rec.Decision(ctx, e)
}

// unauthenticatedEvent is what is recorded of a request refused before an
// identity was known: method, host, path (the recorder drops its query and
// masks it), source, outcome and reason.
func unauthenticatedEvent(r *authz.Result) recorder.DecisionEvent {
	e := recorder.DecisionEvent{RequestID: r.RequestID, Decision: r.Outcome.String()}
	if r.Refusal != nil {
		e.Reason = refusalReason(r.Refusal)
	}
	if req := r.Request; req != nil {
		e.Time, e.Source = req.Time, req.Source
		e.Method, e.Host, e.Path = req.Method, req.Host, req.Path
	}
	return e
}

// refusalReason is the refusal's ErrorInfo reason, with why for
// UNAUTHENTICATED ("UNAUTHENTICATED: expired").
func refusalReason(f *authz.Refusal) string {
	if why := f.Metadata["why"]; why != "" {
		return f.Reason + ": " + why
	}
	return f.Reason
}

// voteRecorder records approval votes in the requester's session.
func voteRecorder(rec *recorder.Recorder, log *slog.Logger) func(context.Context, approvals.Approval, approvals.Vote) {
	if rec == nil {
		return nil
	}
	return func(ctx context.Context, a approvals.Approval, v approvals.Vote) {
		vote := "deny"
		if v.Approve {
			vote = "approve"
		}
		err := rec.Vote(ctx, recorder.VoteEvent{
			SessionID:  a.Request.SessionID,
			RequestID:  a.Request.RequestID,
			Time:       v.At,
			ApprovalID: a.ID,
			Approver:   cmp.Or(v.Email, v.Approver),
			Vote:       vote,
			Reason:     v.Reason,
			Rule:       a.Request.Rule,
			Subject:    a.Request.Subject,
			State:      string(a.State),
		})
		if err != nil {
			log.Error("recording an approval vote failed", "approval_id", a.ID, "err", err)
		}
	}
}

// recorderOptions maps the recorder section of airlock.yaml to Options;
// the caller adds what the file does not hold (the opened sink, the masker,
// the logger, the Redis client, the session tracker).
func recorderOptions(c config.Recorder) recorder.Options {
	return recorder.Options{
		Spool:         c.Spool,
		SpoolMaxBytes: c.SpoolMaxBytes,
		OnFull:        c.OnFull,
		IdleGap:       c.IdleGap,
		MaxBodyBytes:  c.MaxBodyBytes,
		SigningKey:    c.SigningKey,

		CheckpointInterval: c.CheckpointInterval,
		Unauthenticated:    unauthenticatedOptions(c.Unauthenticated),
		Durability:         c.Durability,
	}
}

// unauthenticatedOptions maps recorder.unauthenticated; a rate of 0 (record
// none) is a negative Rate in Options, where 0 takes the default.
func unauthenticatedOptions(u config.RecorderUnauthenticated) recorder.UnauthenticatedOptions {
	rate := u.Rate
	if rate == 0 {
		rate = -1
	}
	return recorder.UnauthenticatedOptions{SpoolFraction: u.SpoolFraction, Rate: rate, Burst: u.Burst, MaxSources: u.MaxSources}
}
