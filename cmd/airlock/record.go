package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
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

var (
	_ authz.Recorder   = (*recorder.Recorder)(nil)
	_ extproc.Recorder = (*recorder.Recorder)(nil)
)

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
