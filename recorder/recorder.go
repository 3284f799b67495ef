// Package recorder records sessions: every request's decision, request,
// response and approval votes, hash-chained per segment, appended to a
// local fsync'd spool before the request goes on, then uploaded in gzip
// chunks with a manifest to a sink (gs://BUCKET/PREFIX or file://DIR):
//
//	PREFIX/YYYY/MM/DD/SESSION/SEGMENT-SEQ.jsonl.gz
//	PREFIX/YYYY/MM/DD/SESSION/SEGMENT.manifest.json
//
// A segment is one writer's chain of events in a session; a session may
// hold several (replicas, restarts, days). The Reader lists, loads and
// verifies what was recorded.
package recorder

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/handoff"
)

// Options configure a Recorder. Zero values take the defaults noted.
type Options struct {
	// Sink is where segments are uploaded (OpenSink opens gs://BUCKET/PREFIX
	// or file://DIR). Required.
	Sink Sink
	// Spool is the local spool directory. Required.
	Spool string
	// SpoolMaxBytes bounds the spool on disk; default 1 GiB.
	SpoolMaxBytes int64
	// SpoolFileBytes is the size at which a spool file is rotated; default
	// SpoolMaxBytes/8, at most 64 MiB.
	SpoolFileBytes int64
	// OnFull is "refuse" (default: recording fails with ErrSpoolFull) or
	// "drop" (the event is dropped and counted).
	OnFull string
	// IdleGap starts a new session for a subject after this long without
	// requests, and closes an idle segment; default 30 minutes.
	IdleGap time.Duration
	// MaxBodyBytes bounds the masked body kept per event; 0 keeps none.
	MaxBodyBytes int
	// SigningKey is a PEM Ed25519 private key file signing manifests.
	SigningKey string
	// Signer, when set, is used instead of SigningKey.
	Signer *Signer
	// RedisClient, when set, tracks sessions and segment links across
	// replicas (the caller owns it); nil keeps them in memory.
	RedisClient redis.UniversalClient
	// Tracker, when set, replaces the memory or Redis tracker.
	Tracker Tracker
	// Mask masks request bodies, header values (request and response) and
	// request paths and queries. Nil drops request bodies (header
	// credentials are always masked). It may mask its argument in place and
	// return it, but must not keep it after it returns: the recorder
	// reuses the buffer. Its output must depend on its input alone: the
	// recorder remembers the header values it leaves unchanged.
	Mask func([]byte) []byte
	// Logger receives upload errors and recoveries; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// FlushInterval is how often the uploader looks for due segments and
	// idle ones; default 1s.
	FlushInterval time.Duration
	// ChunkMaxBytes bounds the uncompressed size of a chunk; default 4 MiB.
	ChunkMaxBytes int
	// ChunkMinBytes and ChunkMaxAge: an open segment is uploaded once it
	// has ChunkMinBytes pending or its oldest pending event is ChunkMaxAge
	// old; defaults ChunkMaxBytes and 10s (a chunk costs a write of its
	// own and of the segment's state, so a busy session uploads full
	// ones). Closed segments upload at once.
	ChunkMinBytes int
	ChunkMaxAge   time.Duration
	// SegmentMaxEvents rolls a segment over after this many events; default 100,000.
	SegmentMaxEvents int64
	// PendingMemoryBytes bounds the spooled event lines also kept in memory
	// for upload; beyond it they are read back from the spool. Default 64 MiB.
	PendingMemoryBytes int64
	// UploadConcurrency is the number of segments uploaded at once; default 32.
	UploadConcurrency int
	// UploadTimeout bounds one object upload; default 60s.
	UploadTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between failed uploads of a
	// segment; defaults 500ms and 30s.
	RetryMin, RetryMax time.Duration
	// CheckpointInterval is how often, at most, the writer writes a signed
	// checkpoint of the manifests it wrote; default 1 minute.
	CheckpointInterval time.Duration
	// Unauthenticated bounds what is recorded of the requests refused
	// before an identity is known.
	Unauthenticated UnauthenticatedOptions
	// Durability says where an allowed request waits until its recording
	// is durable: DurabilityCheck (the default) makes Decision wait,
	// DurabilityExtProc lets Decision return at once because ext_proc's
	// request event, which carries the decision, is made durable before
	// Envoy forwards the request.
	Durability string
}

// Durability modes (config recorder.durability).
const (
	// DurabilityExtProc: ext_authz answers an allowed request at once and
	// ext_proc's request-headers reply waits until the request event is
	// durable. Envoy must run ext_proc on every request it forwards.
	DurabilityExtProc = "extproc"
	// DurabilityCheck: the Check waits until the decision is durable, for
	// deployments where no ext_proc runs (an ext_authz-only provider).
	DurabilityCheck = "check"
)

// UnauthenticatedOptions bound the recording of requests refused before an
// identity is known (no token, a bad one): anyone who reaches Envoy can
// send them, so they are recorded compactly (method, host, path without
// query, source address, reason), limited per source address, in a spool
// of their own that can never take the room authenticated agents need.
type UnauthenticatedOptions struct {
	// SpoolFraction is their share of SpoolMaxBytes; default 0.05. The
	// rest is the spool of authenticated traffic.
	SpoolFraction float64
	// Rate is how many events per second one source address may add;
	// Burst how many at once. Defaults 1 and 10. A negative Rate records
	// none.
	Rate  float64
	Burst int
	// MaxSources bounds the source addresses tracked at once; default
	// 10,000. Beyond it, events of new sources are dropped.
	MaxSources int
}

// Stats are the recorder's counters.
type Stats struct {
	// SpoolBytes is the spool's size on disk.
	SpoolBytes int64
	// PendingEvents are spooled and not yet uploaded.
	PendingEvents int64
	// Dropped counts events dropped by OnFull "drop".
	Dropped int64
	// Events counts events made durable in the spool.
	Events int64
	// Syncs counts the spool's group commits (write plus fdatasync);
	// Events per Sync is how many events share one.
	Syncs int64
	// Chunks counts chunks uploaded.
	Chunks int64
	// Failed counts events of RequestHeaders and Response that could not
	// be recorded (those methods return nothing).
	Failed int64
	// UploadErrors counts failed uploads (each retried).
	UploadErrors int64
	// LastUploadError is the last upload failure, empty after a success.
	LastUploadError string
	// Checkpoints counts checkpoints written.
	Checkpoints int64
	// Unauthenticated counts events of requests refused before an
	// identity was known that were recorded; UnauthenticatedDropped those
	// dropped, by reason: rate_limited (their source's rate), spool_full
	// (their share of the spool) and failed (the spool failed).
	Unauthenticated        int64
	UnauthenticatedDropped map[string]int64
}

// Recorder records sessions. It is safe for concurrent use.
type Recorder struct {
	opts    Options
	headers *headerMasker
	sink    Sink
	spool   *spool
	anon    *spool // requests refused before an identity was known
	limiter *sourceLimiter
	tracker Tracker
	links   *links
	signer  *Signer
	log     *slog.Logger
	now     func() time.Time
	segDir  string
	writer  string
	lock    *spoolLock

	// createMu serialises the start of segments (a Redis round trip and
	// an fsync) without holding mu.
	createMu sync.Mutex

	mu       sync.Mutex
	active   map[string]*segment // session -> open segment
	segments map[string]*segment // every segment not yet fully uploaded
	closing  bool

	kick       chan struct{}
	stop       chan struct{}
	loopDone   chan struct{}
	loopCancel context.CancelFunc

	dropped      atomic.Int64
	events       atomic.Int64
	chunks       atomic.Int64
	uploadErrors atomic.Int64
	failures     atomic.Int64
	memPending   atomic.Int64
	lastErr      atomic.Pointer[string]
	checkpoints  atomic.Int64

	anonEvents, anonRateLimited, anonSpoolFull, anonFailed atomic.Int64

	// chunkDue says a segment has a chunk's worth of pending events, maybe
	// not all durable yet: the uploader is kicked after each sync until
	// they are uploaded.
	chunkDue atomic.Bool

	cpMu    sync.Mutex
	cp      checkpointState
	cpWrite sync.Mutex // one checkpoint pass at a time
}

// segment is one chain of events of a session written by this process.
type segment struct {
	mu         sync.Mutex
	id         string
	session    string
	nextSeq    int64
	chain      *chain // owned by the spool's committer (see queued)
	lastAppend time.Time
	closed     bool // close event queued: nothing may follow
	pending    []pendingEvent
	pendingLen int

	// owned by the uploader while uploading is set
	uploading     bool
	man           Manifest
	manifestDirty bool
	// manifestAt is when the manifest was last written.
	manifestAt time.Time
	retryAt    time.Time
	backoff    time.Duration
}

// pendingEvent is a spooled event not yet uploaded. Within the memory
// budget its line and summary fields stay in memory; beyond it (a long sink
// outage) only its place in the spool is kept and it is read back to upload.
type pendingEvent struct {
	seq    int64
	n      int   // length of the line
	off    int64 // of the line in its spool file
	fileNo uint64
	line   []byte // nil when spilled
	batch  *commitBatch
	sum    eventSummary // for the manifest; zero when spilled
	time   time.Time
}

var _ interface {
	Session(ctx context.Context, subject, requested string) (string, error)
} = (*Recorder)(nil)

// New opens the spool (recovering what a previous process left), the sink
// and the session tracker, and starts uploading.
func New(ctx context.Context, opts Options) (*Recorder, error) {
	if opts.Sink == nil {
		return nil, errors.New("recorder: a sink is required")
	}
	if opts.Spool == "" {
		return nil, errors.New("recorder: a spool directory is required")
	}
	if opts.SpoolMaxBytes <= 0 {
		opts.SpoolMaxBytes = 1 << 30
	}
	if opts.SpoolFileBytes <= 0 {
		opts.SpoolFileBytes = min(opts.SpoolMaxBytes/8, 64<<20)
		opts.SpoolFileBytes = max(opts.SpoolFileBytes, 4096)
	}
	switch opts.Durability {
	case "":
		opts.Durability = DurabilityCheck
	case DurabilityCheck, DurabilityExtProc:
	default:
		return nil, fmt.Errorf("recorder: durability must be extproc or check, not %q", opts.Durability)
	}
	switch opts.OnFull {
	case "":
		opts.OnFull = "refuse"
	case "refuse", "drop":
	default:
		return nil, fmt.Errorf("recorder: on_full must be refuse or drop, not %q", opts.OnFull)
	}
	if opts.IdleGap <= 0 {
		opts.IdleGap = 30 * time.Minute
	}
	if opts.MaxBodyBytes < 0 {
		opts.MaxBodyBytes = 0
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.ChunkMaxBytes <= 0 {
		opts.ChunkMaxBytes = 4 << 20
	}
	if opts.ChunkMinBytes <= 0 {
		opts.ChunkMinBytes = opts.ChunkMaxBytes
	}
	if opts.ChunkMaxAge <= 0 {
		opts.ChunkMaxAge = 10 * time.Second
	}
	if opts.SegmentMaxEvents <= 0 {
		opts.SegmentMaxEvents = 100000
	}
	if opts.PendingMemoryBytes <= 0 {
		opts.PendingMemoryBytes = 64 << 20
	}
	if opts.UploadConcurrency <= 0 {
		opts.UploadConcurrency = 32
	}
	if opts.UploadTimeout <= 0 {
		opts.UploadTimeout = time.Minute
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 500 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Minute
	}
	u := &opts.Unauthenticated
	if u.SpoolFraction <= 0 || u.SpoolFraction >= 1 {
		u.SpoolFraction = 0.05
	}
	if u.Rate == 0 {
		u.Rate = 1
	}
	if u.Burst <= 0 {
		u.Burst = 10
	}
	if u.MaxSources <= 0 {
		u.MaxSources = 10000
	}
	lock, err := lockSpool(opts.Spool)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.release()
		}
	}()
	var wb [8]byte
	_, _ = rand.Read(wb[:])
	r := &Recorder{
		lock:     lock,
		writer:   hex.EncodeToString(wb[:]),
		limiter:  newSourceLimiter(u.Rate, u.Burst, u.MaxSources),
		cp:       checkpointState{pending: map[string]pendingEntry{}},
		opts:     opts,
		headers:  newHeaderMasker(opts.Mask),
		log:      opts.Logger,
		now:      opts.Now,
		signer:   opts.Signer,
		active:   map[string]*segment{},
		segments: map[string]*segment{},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		segDir:   filepath.Join(opts.Spool, "segments"),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.signer == nil && opts.SigningKey != "" {
		s, err := LoadSigner(opts.SigningKey)
		if err != nil {
			return nil, err
		}
		r.signer = s
	}
	r.sink = opts.Sink
	shared := opts.RedisClient
	switch {
	case opts.Tracker != nil:
		r.tracker = opts.Tracker
	case opts.RedisClient != nil:
		r.tracker = NewRedisTracker(opts.RedisClient)
	default:
		r.tracker = NewMemoryTracker(r.now)
	}
	r.links = newLinks(shared, r.log, r.now)
	if err := os.MkdirAll(r.segDir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: spool: %w", err)
	}
	if err := r.loadStates(); err != nil {
		return nil, err
	}
	// Requests refused before an identity is known have a spool of their
	// own, a share of the bound: however many arrive, the rest stays for
	// authenticated traffic.
	anonMax := int64(float64(opts.SpoolMaxBytes) * u.SpoolFraction)
	sp, err := openSpoolNotifying(opts.Spool, opts.SpoolMaxBytes-anonMax, opts.SpoolFileBytes, r.replay, r.synced)
	if err != nil {
		return nil, err
	}
	r.spool = sp
	anon, err := openSpool(filepath.Join(opts.Spool, "unauthenticated"), anonMax, max(min(anonMax/8, 64<<20), 4096), r.replay)
	if err != nil {
		sp.close()
		return nil, err
	}
	r.anon = anon
	r.closeRecovered()
	loopCtx, cancel := context.WithCancel(context.Background())
	r.loopCancel = cancel
	go r.loop(loopCtx)
	ok = true
	return r, nil
}

// spoolFor is the spool of a session's events.
func (r *Recorder) spoolFor(session string) *spool {
	if session == UnauthenticatedSession {
		return r.anon
	}
	return r.spool
}

// Writer names this process in its manifests and checkpoints.
func (r *Recorder) Writer() string { return r.writer }

// encoded is an event encoded for one segment but its sequence number and
// its prev (see queued): the work of an append done before the segment's
// lock is taken.
type encoded struct {
	buf   *[]byte // head, then tail
	split int
	seg   *segment
}

// zeroPrev stands in for the prev of a line until the committer writes it.
var zeroPrev = strings.Repeat("0", prevDigits)

// encodeFor encodes e for seg; release the result with free.
func encodeFor(seg *segment, e *Event) (encoded, error) {
	if err := checkTime(e); err != nil {
		return encoded{}, err
	}
	e.Session, e.Segment, e.Prev = seg.session, seg.id, zeroPrev
	buf := payloadPool.Get().(*[]byte)
	b := appendEventHead((*buf)[:0], e)
	split := len(b)
	b = appendEventTail(b, e)
	*buf = b
	return encoded{buf: buf, split: split, seg: seg}, nil
}

func (x encoded) free() {
	if cap(*x.buf) <= 64<<10 {
		payloadPool.Put(x.buf)
	}
}

// payload assembles the record of x as event seq, in an exact-size buffer
// (the line stays in memory until it is uploaded); lineAt is where the line
// starts.
func (x encoded) payload(seq int64, closing bool) (payload []byte, lineAt int) {
	b := *x.buf
	segID := x.seg.id
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], seq, 10)
	lineAt = 2 + len(segID) + 8
	payload = make([]byte, 0, lineAt+len(b)+len(d))
	var flags byte
	if closing {
		flags = 1
	}
	payload = append(payload, flags, byte(len(segID)))
	payload = append(payload, segID...)
	payload = binary.BigEndian.AppendUint64(payload, uint64(seq))
	payload = append(payload, b[:x.split]...)
	payload = append(payload, d...)
	payload = append(payload, b[x.split:]...)
	return payload, lineAt
}

var newline = []byte{'\n'}

// gzipWriters keeps compressors for reuse: a new one allocates about a
// megabyte, and a sync.Pool would drop them at every garbage collection,
// which under load comes more often than chunks do.
var gzipWriters = make(chan *gzip.Writer, 16)

func getGzip(w io.Writer) *gzip.Writer {
	select {
	case zw := <-gzipWriters:
		zw.Reset(w)
		return zw
	default:
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		return zw
	}
}

func putGzip(zw *gzip.Writer) {
	select {
	case gzipWriters <- zw:
	default:
	}
}

var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func decodePayload(p []byte) (segID string, seq int64, closing bool, line []byte, ok bool) {
	if len(p) < 2 {
		return "", 0, false, nil, false
	}
	n := int(p[1])
	if len(p) < 2+n+8 {
		return "", 0, false, nil, false
	}
	segID = string(p[2 : 2+n])
	seq = int64(binary.BigEndian.Uint64(p[2+n:]))
	return segID, seq, p[0]&1 == 1, p[2+n+8:], true
}

// Session resolves the session of a request from subject: the name the
// agent sent in x-airlock-session (validated and scoped to the subject),
// or the subject's current session, a new one after IdleGap.
func (r *Recorder) Session(ctx context.Context, subject, requested string) (string, error) {
	if requested != "" {
		return NamedSession(subject, requested)
	}
	return r.tracker.Current(ctx, subject, func() string { return newSessionID(r.now()) }, r.opts.IdleGap)
}

// Decision records what ext_authz decided, refusals included. It returns
// once the event is as safe as its outcome needs (see Durability): a
// refusal once it is written (a killed process loses none; it is synced
// with the next group commit), an allowed request at once where ext_proc
// makes the request durable before Envoy forwards it (DurabilityExtProc),
// else once it is durable.
func (r *Recorder) Decision(ctx context.Context, e DecisionEvent) error {
	if e.Subject == "" && e.SessionID == "" {
		// Refused before an identity was known.
		r.unauthenticated(ctx, e)
		return nil
	}
	d := e
	// An API key travels in the query (?key=) as often as in a header.
	d.headers, d.Path, d.Query = r.headers.maskHeaders(e.Headers, e.Path, e.Query)
	d.Headers = nil
	if d.BodyBytes == 0 {
		d.BodyBytes = int64(len(e.Body))
	}
	if e.BodyMasked {
		d.BodyExcerpt = excerpt(e.Body, r.opts.MaxBodyBytes)
	} else {
		d.BodyExcerpt = r.maskBody(e.Body)
	}
	d.Body, d.BodyMasked = nil, false
	session := e.SessionID
	if session == "" {
		s, err := r.Session(ctx, e.Subject, "")
		if err != nil {
			return err
		}
		session = s
	}
	wait := waitWritten
	if e.Decision == DecisionAllowed {
		wait = waitDurable
		if r.opts.Durability == DurabilityExtProc {
			wait = waitNone
		}
	}
	return r.record(ctx, session, &Event{Time: e.Time, Kind: KindDecision, RequestID: e.RequestID, Decision: &d}, wait)
}

// RecordDecision records a decision as authz hands it over (see
// Decision). Its body is already masked with the request's own rules:
// the recorder only cuts it.
func (r *Recorder) RecordDecision(ctx context.Context, d handoff.Decision) error {
	return r.Decision(ctx, DecisionEvent{
		RequestID: d.RequestID, SessionID: d.SessionID, Time: d.Time,
		Subject: d.Subject, Email: d.Email, Actor: d.Actor, Issuer: d.Issuer,
		Method: d.Method, Host: d.Host, Path: d.Path, Query: d.Query,
		GCPMethod: d.GCPMethod, Project: d.Project, Resource: d.Resource,
		Decision: d.Outcome, Policy: d.Policy, Rule: d.Rule, Rules: d.Rules,
		Message: d.Message, ApprovalID: d.ApprovalID, Source: d.Source, Reason: d.Reason,
		Headers: d.Headers, Body: d.Body, BodyMasked: true, BodyBytes: d.BodyBytes, Mode: d.Mode,
	})
}

// Request records the request as ext_proc saw it and returns once the
// event is durable: Envoy forwards the request only after that. Body goes
// through Options.Mask or is dropped.
func (r *Recorder) Request(ctx context.Context, sessionID, requestID string, e RequestEvent) error {
	q := e
	q.headers, q.Path, _ = r.headers.maskHeaders(e.Headers, e.Path, "")
	q.Headers = nil
	q.BodyBytes = int64(len(e.Body))
	q.BodyExcerpt = r.maskBody(e.Body)
	q.Body = nil
	return r.record(ctx, sessionID, &Event{Kind: KindRequest, RequestID: requestID, Request: &q}, waitDurable)
}

// Vote records one approver's vote in the session of the request and
// returns once it is durable.
func (r *Recorder) Vote(ctx context.Context, e VoteEvent) error {
	v := e
	return r.record(ctx, e.SessionID, &Event{Time: e.Time, Kind: KindVote, RequestID: e.RequestID, Vote: &v}, waitDurable)
}

func (r *Recorder) maskBody(b []byte) string {
	if r.opts.Mask == nil || len(b) == 0 || r.opts.MaxBodyBytes == 0 {
		return ""
	}
	return excerpt(r.opts.Mask(b), r.opts.MaxBodyBytes)
}

// record appends one event to the session's open segment and waits for it
// as wait says.
func (r *Recorder) record(ctx context.Context, session string, e *Event, wait waitLevel) error {
	if !handoff.ValidSessionID(session) {
		return fmt.Errorf("recorder: invalid session id %q", session)
	}
	if lt, ok := r.tracker.(localTracker); ok && lt.Local(session) {
		e.LocalSession = true
	}
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	e.Time = e.Time.UTC()
	if wait < waitDurable && r.memPending.Load() > r.opts.PendingMemoryBytes/2 {
		// Uploads are behind (a slow sink, or more events than the
		// uploader is given time for): wait for the sync, as every
		// request did before, which leaves the uploader the CPU and the
		// time to catch up before events are spilled to be read back.
		wait = waitDurable
		r.poke()
	}
	for {
		seg, err := r.segmentFor(session)
		if err != nil {
			return r.full(err)
		}
		b, _, err := r.appendTo(seg, e, wait)
		if errors.Is(err, errSegmentClosed) {
			continue
		}
		if err != nil {
			return r.full(err)
		}
		r.events.Add(1)
		return waitFor(ctx, b, wait)
	}
}

// waitFor waits until b is written or durable, as wait says.
func waitFor(ctx context.Context, b *commitBatch, wait waitLevel) error {
	ch, errp := b.done, &b.err
	switch wait {
	case waitNone:
		return nil
	case waitWritten:
		ch, errp = b.written, &b.werr
	}
	select {
	case <-ch:
		return *errp
	case <-ctx.Done():
		// The event stays queued and will be durable; the caller gives up.
		return fmt.Errorf("recorder: waiting for the spool: %w", ctx.Err())
	}
}

func (r *Recorder) full(err error) error {
	if errors.Is(err, ErrSpoolFull) && r.opts.OnFull == "drop" {
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Warn("recorder: spool full, dropping events (on_full: drop)", "dropped", r.dropped.Load())
		}
		return nil
	}
	return err
}

func (r *Recorder) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Flush uploads everything durable now, retrying until ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	backoff := 10 * time.Millisecond
	for {
		if !r.uploadPass(ctx, true) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recorder: flush: %d events not uploaded: %w", r.Stats().PendingEvents, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	s := Stats{
		SpoolBytes:      r.spool.usedBytes() + r.anon.usedBytes(),
		Dropped:         r.dropped.Load(),
		Events:          r.events.Load(),
		Syncs:           r.spool.syncs.Load() + r.anon.syncs.Load(),
		Chunks:          r.chunks.Load(),
		UploadErrors:    r.uploadErrors.Load(),
		Failed:          r.failures.Load(),
		Checkpoints:     r.checkpoints.Load(),
		Unauthenticated: r.anonEvents.Load(),
		UnauthenticatedDropped: map[string]int64{
			"rate_limited": r.anonRateLimited.Load(),
			"spool_full":   r.anonSpoolFull.Load(),
			"failed":       r.anonFailed.Load(),
		},
	}
	if p := r.lastErr.Load(); p != nil {
		s.LastUploadError = *p
	}
	r.mu.Lock()
	for _, seg := range r.segments {
		seg.mu.Lock()
		s.PendingEvents += int64(len(seg.pending))
		seg.mu.Unlock()
	}
	r.mu.Unlock()
	return s
}

// Healthy reports a spool that cannot be written or is full (with on_full
// refuse): requests are then refused.
func (r *Recorder) Healthy() error {
	err := r.spool.healthy()
	if errors.Is(err, ErrSpoolFull) {
		if r.opts.OnFull == "drop" {
			return nil
		}
		return fmt.Errorf("%w: uploads to %s are behind (last error: %s)", err, r.sink, r.Stats().LastUploadError)
	}
	return err
}

// Sink is where the recorder uploads.
func (r *Recorder) Sink() Sink { return r.sink }

// Close stops recording, closes every open segment and tries until ctx ends
// to upload what is spooled. What is left stays in the spool and is
// uploaded by the next process on the same spool.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil
	}
	r.closing = true
	var open []*segment
	for _, seg := range r.segments {
		open = append(open, seg)
	}
	r.active = map[string]*segment{}
	r.mu.Unlock()
	close(r.stop)
	r.loopCancel()
	<-r.loopDone
	sort.Slice(open, func(i, j int) bool { return open[i].id < open[j].id })
	errs := r.closeSegments(ctx, open, "shutdown")
	if err := r.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := r.checkpoint(ctx, true); err != nil {
		errs = append(errs, err)
	}
	r.spool.close()
	r.anon.close()
	r.lock.release()
	return errors.Join(errs...)
}

// abandon stops the recorder as a crash would: nothing is closed or
// uploaded; what was acknowledged is in the spool.
func (r *Recorder) abandon() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	close(r.stop)
	r.loopCancel()
	<-r.loopDone
	r.spool.close()
	r.anon.close()
	r.lock.release()
}
