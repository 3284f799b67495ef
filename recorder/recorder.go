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
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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

	"cloud.google.com/go/storage"
	"github.com/klauspost/compress/gzip"
	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/handoff"
)

// Options configure a Recorder. Zero values take the defaults noted.
type Options struct {
	// Sink is gs://BUCKET/PREFIX or file://DIR. Required unless SinkImpl is set.
	Sink string
	// SinkImpl, when set, is used instead of opening Sink.
	SinkImpl Sink
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
	// Redis is a redis:// or rediss:// URL for session tracking across
	// replicas; empty keeps sessions in memory.
	Redis string
	// RedisClient, when set, is used instead of Redis.
	RedisClient redis.UniversalClient
	// Tracker, when set, replaces the memory or Redis tracker.
	Tracker Tracker
	// Mask masks request bodies, header values (request and response) and
	// request paths and queries. Nil drops request bodies (header
	// credentials are always masked). It may mask its argument in place and
	// return it, but must not keep it after it returns: the recorder
	// reuses the buffer.
	Mask func([]byte) []byte
	// Logger receives upload errors and recoveries; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// StorageClient is used for gs:// sinks instead of a new client.
	StorageClient *storage.Client
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
	ownsRedis    redis.UniversalClient
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
	r.sink = opts.SinkImpl
	if r.sink == nil {
		s, err := OpenSink(ctx, opts.Sink, SinkOptions{StorageClient: opts.StorageClient})
		if err != nil {
			return nil, err
		}
		r.sink = s
	}
	shared := opts.RedisClient
	switch {
	case opts.Tracker != nil:
		r.tracker = opts.Tracker
	case opts.RedisClient != nil:
		r.tracker = NewRedisTracker(opts.RedisClient)
	case opts.Redis != "" && opts.Redis != "memory":
		ro, err := redis.ParseURL(opts.Redis)
		if err != nil {
			return nil, fmt.Errorf("recorder: redis: %w", err)
		}
		c := redis.NewClient(ro)
		r.ownsRedis = c
		shared = c
		r.tracker = NewRedisTracker(c)
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

// loadStates reads the segments a previous process left unfinished.
func (r *Recorder) loadStates() error {
	entries, err := os.ReadDir(r.segDir)
	if err != nil {
		return fmt.Errorf("recorder: spool: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.segDir, e.Name()))
		if err != nil {
			return fmt.Errorf("recorder: spool: %w", err)
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			r.log.Error("recorder: unreadable segment state, ignored", "file", e.Name(), "err", err)
			continue
		}
		seg := &segment{id: m.Segment, session: m.Session, man: m, nextSeq: m.Events, closed: m.Closed, manifestDirty: true}
		head := m.Head
		if head == "" {
			head = m.Genesis
		}
		seg.chain = chainFrom(head)
		r.segments[seg.id] = seg
	}
	return nil
}

// chainFrom is a chain whose head is the hex hash head. A head that is not
// one (a damaged state file) leaves zeros: verification then reports the
// break.
func chainFrom(head string) *chain {
	c := &chain{}
	_, _ = hex.Decode(c.sum[:], []byte(head))
	return c
}

// recoveredBatch stands for the commit of records found in the spool.
var recoveredBatch = func() *commitBatch {
	b := newBatch()
	close(b.written)
	close(b.done)
	return b
}()

// replay takes back one spooled record of an unfinished segment; records
// already uploaded (or of finished segments) are not kept.
func (r *Recorder) replay(rec spoolRecord) bool {
	segID, seq, closing, line, ok := decodePayload(rec.payload)
	seg := r.segments[segID]
	if !ok || seg == nil || seq < seg.man.Events {
		return false
	}
	if seq != seg.nextSeq {
		r.log.Error("recorder: spooled event out of sequence, ignored", "segment", segID, "seq", seq, "want", seg.nextSeq)
		return false
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		r.log.Error("recorder: unreadable spooled event, ignored", "segment", segID, "seq", seq)
		return false
	}
	p := pendingEvent{seq: seq, n: len(line), off: rec.offset + int64(len(rec.payload)-len(line)), fileNo: rec.fileNo, batch: recoveredBatch, time: ev.Time}
	r.keep(&p, line, summarize(&ev))
	seg.pending = append(seg.pending, p)
	seg.pendingLen += len(line)
	seg.nextSeq++
	seg.chain.sum = sha256.Sum256(line)
	if closing {
		seg.closed = true
	}
	return true
}

// closeRecovered closes the segments a previous process left open.
func (r *Recorder) closeRecovered() {
	n := 0
	var open []*segment
	for _, seg := range r.segments {
		if !seg.closed {
			open = append(open, seg)
		}
		n += len(seg.pending)
	}
	for _, err := range r.closeSegments(context.Background(), open, "writer restarted") {
		r.log.Error("recorder: closing a recovered segment failed; retried later", "err", err)
	}
	if len(r.segments) > 0 {
		r.log.Info("recorder: resuming uploads left by a previous run", "segments", len(r.segments), "events", n)
	}
}

// payload layout: flags(1) seglen(1) segment seq(8) line.

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
	d.headers, d.Path, d.Query = maskHeaders(e.Headers, r.opts.Mask, e.Path, e.Query)
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

// Request records the request as ext_proc saw it and returns once the
// event is durable: Envoy forwards the request only after that. Body goes
// through Options.Mask or is dropped.
func (r *Recorder) Request(ctx context.Context, sessionID, requestID string, e RequestEvent) error {
	q := e
	q.headers, q.Path, _ = maskHeaders(e.Headers, r.opts.Mask, e.Path, "")
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

var errSegmentClosed = errors.New("recorder: segment closed")

// segmentFor returns the open segment of a session, starting one.
func (r *Recorder) segmentFor(session string) (*segment, error) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	seg := r.active[session]
	r.mu.Unlock()
	if seg != nil {
		seg.mu.Lock()
		closed := seg.closed
		roll := seg.nextSeq >= r.opts.SegmentMaxEvents
		seg.mu.Unlock()
		if !closed && !roll {
			return seg, nil
		}
		if roll && !closed {
			if errs := r.closeSegments(context.Background(), []*segment{seg}, "rolled over"); len(errs) > 0 {
				return nil, errs[0]
			}
		}
	}
	return r.newSegment(session)
}

// newSegment starts a segment of session, naming the segment that came
// before it, unless another goroutine started one meanwhile.
func (r *Recorder) newSegment(session string) (*segment, error) {
	r.createMu.Lock()
	defer r.createMu.Unlock()
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if seg := r.active[session]; seg != nil {
		seg.mu.Lock()
		usable := !seg.closed && seg.nextSeq < r.opts.SegmentMaxEvents
		seg.mu.Unlock()
		if usable {
			r.mu.Unlock()
			return seg, nil
		}
		delete(r.active, session)
	}
	r.mu.Unlock()
	now := r.now().UTC()
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	id := now.Format("20060102T150405Z") + "." + hex.EncodeToString(rb[:])
	day := now.Format("2006/01/02")
	next := SegmentRef{Segment: id, Day: day}
	prev := r.links.start(session, next)
	seg := &segment{id: id, session: session, lastAppend: now}
	seg.man = Manifest{Version: ManifestVersion, Session: session, Segment: id, Day: day, Genesis: Genesis(session, id, prev),
		Chunks: []ChunkRecord{}, Previous: prev, Writer: r.writer, IdleGap: r.opts.IdleGap.String()}
	seg.chain = chainFrom(seg.man.Genesis)
	// The state file exists before any event of the segment is durable, so
	// that a restart knows every segment it must finish.
	if err := r.saveState(&seg.man); err != nil {
		r.links.abort(session, next, prev)
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		os.Remove(filepath.Join(r.segDir, id+".json"))
		r.links.abort(session, next, prev)
		return nil, ErrClosed
	}
	r.active[session] = seg
	r.segments[id] = seg
	return seg, nil
}

// appendTo queues e as the next event of seg, its caller waiting as wait
// says, and returns the batch to wait on and e's line (complete once the
// batch is written). The event is encoded before seg's lock is taken, and
// chained by the spool's committer: concurrent requests of one session
// hold the lock only to take a sequence number and queue the record.
func (r *Recorder) appendTo(seg *segment, e *Event, wait waitLevel) (*commitBatch, []byte, error) {
	x, err := encodeFor(seg, e)
	if err != nil {
		return nil, nil, fmt.Errorf("recorder: encode event: %w", err)
	}
	defer x.free()
	sum := summarize(e)
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if seg.closed {
		return nil, nil, errSegmentClosed
	}
	return r.appendLocked(seg, x, e.Time, sum, e.Kind == KindClose, wait)
}

func (r *Recorder) appendLocked(seg *segment, x encoded, t time.Time, sum eventSummary, closing bool, wait waitLevel) (*commitBatch, []byte, error) {
	seq := seg.nextSeq
	payload, lineAt := x.payload(seq, closing)
	b, fileNo, off, err := r.spoolFor(seg.session).enqueue(payload, lineAt, seg.chain, closing, wait)
	if err != nil {
		return nil, nil, err
	}
	line := payload[lineAt:]
	p := pendingEvent{seq: seq, n: len(line), off: off + int64(lineAt), fileNo: fileNo, batch: b, time: t}
	r.keep(&p, line, sum)
	seg.pending = append(seg.pending, p)
	if seg.pendingLen < r.opts.ChunkMinBytes && seg.pendingLen+len(line) >= r.opts.ChunkMinBytes {
		// A chunk's worth: upload it once it is durable.
		r.chunkDue.Store(true)
		r.poke()
	}
	seg.pendingLen += len(line)
	seg.nextSeq++
	seg.lastAppend = t
	if closing {
		seg.closed = true
	}
	return b, line, nil
}

// closeEvent is a close event queued by appendClose.
type closeEvent struct {
	seg   *segment
	batch *commitBatch
	line  []byte
}

// appendClose queues a close event; it does not wait. When this call
// closed the segment it returns the event, for closedRef.
func (r *Recorder) appendClose(seg *segment, reason string) (c *closeEvent, err error) {
	e := &Event{Time: r.now().UTC(), Kind: KindClose, Reason: reason}
	x, err := encodeFor(seg, e)
	if err != nil {
		return nil, err
	}
	defer x.free()
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if seg.closed {
		return nil, nil
	}
	b, line, err := r.appendLocked(seg, x, e.Time, summarize(e), true, waitWritten)
	if err != nil {
		return nil, err
	}
	return &closeEvent{seg: seg, batch: b, line: line}, nil
}

// closedRef waits until the close event is written (its line complete) and
// returns how far its segment went, for links.closed.
func (c *closeEvent) closedRef(ctx context.Context) (SegmentRef, error) {
	if err := waitFor(ctx, c.batch, waitWritten); err != nil {
		return SegmentRef{}, err
	}
	seg := c.seg
	seg.mu.Lock()
	events, day := seg.nextSeq, seg.man.Day // the uploader replaces seg.man
	seg.mu.Unlock()
	return SegmentRef{Segment: seg.id, Day: day, Events: events, Head: lineHash(c.line)}, nil
}

// closeSegments closes segs (those not closed yet) with reason and tells
// links how far each went; it returns the failures.
func (r *Recorder) closeSegments(ctx context.Context, segs []*segment, reason string) []error {
	var errs []error
	var queued []*closeEvent
	for _, seg := range segs {
		c, err := r.appendClose(seg, reason)
		if err != nil {
			errs = append(errs, fmt.Errorf("segment %s: %w", seg.id, err))
		} else if c != nil {
			queued = append(queued, c)
		}
	}
	for _, c := range queued {
		ref, err := c.closedRef(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("segment %s: %w", c.seg.id, err))
			continue
		}
		r.links.closed(ctx, c.seg.session, ref)
	}
	return errs
}

// keep holds line and its summary in memory within the budget.
func (r *Recorder) keep(p *pendingEvent, line []byte, sum eventSummary) {
	if r.memPending.Add(int64(len(line))) > r.opts.PendingMemoryBytes {
		r.memPending.Add(-int64(len(line)))
		return
	}
	p.line, p.sum = line, sum
}

func (r *Recorder) saveState(m *Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("recorder: segment state: %w", err)
	}
	p := filepath.Join(r.segDir, m.Segment+".json")
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("recorder: segment state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(r.segDir)
	}
	if err != nil {
		return fmt.Errorf("recorder: segment state: %w", err)
	}
	return nil
}

// loop uploads on every tick or kick until Close; ticks also close idle
// segments and write checkpoints.
func (r *Recorder) loop(ctx context.Context) {
	defer close(r.loopDone)
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.closeIdle()
			r.uploadPass(ctx, false)
			_ = r.checkpoint(ctx, false)
		case <-r.kick:
			r.uploadPass(ctx, false)
		}
	}
}

// synced runs after each sync of a spool: a chunk's worth of events that
// was waiting to be durable may now be.
func (r *Recorder) synced() {
	if r.chunkDue.Load() {
		r.poke()
	}
}

// closeIdle closes segments without events for IdleGap.
func (r *Recorder) closeIdle() {
	now := r.now()
	r.mu.Lock()
	var idle []*segment
	for session, seg := range r.active {
		seg.mu.Lock()
		if seg.closed || now.Sub(seg.lastAppend) > r.opts.IdleGap {
			idle = append(idle, seg)
			delete(r.active, session)
		}
		seg.mu.Unlock()
	}
	var unclosed []*segment
	for _, seg := range r.segments {
		seg.mu.Lock()
		if !seg.closed && r.active[seg.session] != seg {
			unclosed = append(unclosed, seg)
		}
		seg.mu.Unlock()
	}
	r.mu.Unlock()
	for _, err := range r.closeSegments(context.Background(), append(idle, unclosed...), "idle") {
		r.log.Warn("recorder: closing an idle segment failed; retried later", "err", err)
	}
	r.links.prune(max(24*time.Hour, 2*r.opts.IdleGap))
}

// uploadPass uploads every segment with durable pending events or a
// manifest to write, UploadConcurrency at a time. With force, backoff is
// ignored. It reports whether anything is left.
func (r *Recorder) uploadPass(ctx context.Context, force bool) bool {
	now := r.now()
	r.chunkDue.Store(false)
	minBytes := r.chunkMinBytes()
	r.mu.Lock()
	type upload struct {
		seg    *segment
		chunks bool // pending events are due, not only the manifest
	}
	var work []upload
	left := false
	for _, seg := range r.segments {
		seg.mu.Lock()
		busy := seg.uploading
		has := len(seg.pending) > 0 || seg.manifestDirty || seg.closed
		// Small, young, open segments wait to make fewer, larger chunks:
		// they are safe in the spool meanwhile. A manifest waits for its
		// interval (see uploadSegment).
		chunksDue := force || seg.closed || seg.pendingLen >= minBytes ||
			(len(seg.pending) > 0 && now.Sub(seg.pending[0].time) >= r.opts.ChunkMaxAge)
		if !busy && has && (chunksDue || r.manifestDue(seg, now, force)) && (force || !now.Before(seg.retryAt)) {
			seg.uploading = true
			work = append(work, upload{seg, chunksDue})
		} else if has {
			left = true
		}
		seg.mu.Unlock()
	}
	r.mu.Unlock()
	sem := make(chan struct{}, r.opts.UploadConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, u := range work {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			more := r.uploadSegment(ctx, u.seg, force, u.chunks, minBytes)
			if more {
				mu.Lock()
				left = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return left
}

// chunkMinBytes is what an open segment must have pending to be uploaded:
// ChunkMinBytes, or a sixteenth of it (at least 64 KiB) while the pending
// events held in memory take more than half of PendingMemoryBytes (many
// sessions each holding less than a chunk), so that they are not spilled.
func (r *Recorder) chunkMinBytes() int {
	if r.memPending.Load() > r.opts.PendingMemoryBytes/2 {
		return min(r.opts.ChunkMinBytes, max(r.opts.ChunkMinBytes/16, 64<<10))
	}
	return r.opts.ChunkMinBytes
}

// manifestDue says whether seg's manifest is to be written now: it is
// dirty, and the segment is closed, a flush forces it, or FlushInterval
// has passed since it was last written. Under seg.mu.
func (r *Recorder) manifestDue(seg *segment, now time.Time, force bool) bool {
	return seg.manifestDirty && (force || seg.closed || !now.Before(seg.manifestAt.Add(r.opts.FlushInterval)))
}

// uploadSegment uploads the durable pending events of seg in chunks when
// chunks is set, then its manifest when due. It reports whether work is
// left.
func (r *Recorder) uploadSegment(ctx context.Context, seg *segment, force, chunks bool, minBytes int) (more bool) {
	defer func() {
		seg.mu.Lock()
		seg.uploading = false
		seg.mu.Unlock()
	}()
	now := r.now()
	atLeast := 0 // events the next chunk must take (one found in the sink)
	for chunks {
		seg.mu.Lock()
		n, size, full := 0, 0, false
		var last *commitBatch
		for _, p := range seg.pending {
			if p.batch != last {
				if !isDone(p.batch) {
					break
				}
				last = p.batch
			}
			if n >= atLeast && n > 0 && size+p.n > r.opts.ChunkMaxBytes {
				full = true
				break
			}
			n++
			size += p.n + 1
		}
		// The events taken stay where they are: appends go after them.
		take := seg.pending[:n:n]
		// Only durable events go up; a close event that is queued but not
		// yet durable waits too. Until a segment closes, durable events
		// wait for the next pass unless they fill a chunk or have waited
		// ChunkMaxAge: under load, draining them as they come (the events
		// queued while a chunk uploads, or the durable few of a batch still
		// syncing) would upload a stream of tiny chunks.
		aged := n > 0 && now.Sub(take[0].time) >= r.opts.ChunkMaxAge
		small := atLeast == 0 && !force && !seg.closed && !full && !aged && size < minBytes
		if small && seg.pendingLen >= minBytes {
			// A chunk's worth is queued, not all durable yet.
			r.chunkDue.Store(true)
		}
		seg.mu.Unlock()
		if n == 0 || small {
			if small {
				more = true
			}
			break
		}
		err := r.uploadChunk(ctx, seg, take)
		var tm errTakeMore
		if errors.As(err, &tm) && atLeast < tm.n {
			// Once: events not yet durable cannot be taken.
			atLeast = tm.n
			continue
		}
		atLeast = 0
		if err != nil {
			r.uploadFailed(ctx, seg, err)
			return true
		}
	}
	// The manifest follows its chunks at most once per FlushInterval while
	// the segment is open (a busy session uploads several chunks a
	// second; a reader meanwhile sees the newest chunks as not yet in the
	// manifest, chaining correctly), and at once when it closes or on
	// Flush.
	seg.mu.Lock()
	dirty, due := seg.manifestDirty, r.manifestDue(seg, r.now(), force)
	seg.mu.Unlock()
	if dirty && !due {
		more = true
	} else if dirty {
		if err := r.putManifest(ctx, seg); err != nil {
			r.uploadFailed(ctx, seg, err)
			return true
		}
	}
	seg.backoff = 0
	seg.mu.Lock()
	done := seg.closed && len(seg.pending) == 0 && seg.man.Closed
	left := more || len(seg.pending) > 0
	seg.mu.Unlock()
	if done {
		if err := os.Remove(filepath.Join(r.segDir, seg.id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Error("recorder: removing segment state", "segment", seg.id, "err", err)
			return true
		}
		r.mu.Lock()
		delete(r.segments, seg.id)
		if r.active[seg.session] == seg {
			delete(r.active, seg.session)
		}
		r.mu.Unlock()
	}
	return left
}

func isDone(b *commitBatch) bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func (r *Recorder) uploadFailed(ctx context.Context, seg *segment, err error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Stopped by shutdown (Close cancels the background pass and
		// uploads what is left itself): not a failure of the sink.
		return
	}
	// A chunk found already uploaded (before a crash) with more events than
	// are durable here yet is not a failure: it is taken once they are.
	var tm errTakeMore
	if !errors.As(err, &tm) {
		r.uploadErrors.Add(1)
		msg := err.Error()
		r.lastErr.Store(&msg)
	}
	if seg.backoff == 0 {
		seg.backoff = r.opts.RetryMin
	} else {
		seg.backoff = min(seg.backoff*2, r.opts.RetryMax)
	}
	seg.retryAt = r.now().Add(seg.backoff)
	r.log.Warn("recorder: upload failed; retrying", "segment", seg.id, "retry_in", seg.backoff, "err", err)
}

// uploadChunk writes one chunk, records it in the local state (after which
// the spooled records are released) and marks the manifest dirty. A chunk
// object that already exists (a previous process uploaded it and crashed
// before recording it) is never replaced: when it holds the next pending
// events it is taken as it is.
func (r *Recorder) uploadChunk(ctx context.Context, seg *segment, take []pendingEvent) error {
	sp := r.spoolFor(seg.session)
	files := map[uint64]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	lines := make([][]byte, len(take))
	sums := make([]eventSummary, len(take))
	size := 0
	for i, p := range take {
		line, sum, err := r.pendingLine(sp, files, seg, p)
		if err != nil {
			return err
		}
		lines[i], sums[i] = line, sum
		size += p.n + 1
	}
	var gz bytes.Buffer
	gz.Grow(size/4 + 512)
	zw := getGzip(&gz)
	defer putGzip(zw)
	for _, line := range lines {
		zw.Write(line)
		zw.Write(newline)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("recorder: compress: %w", err)
	}
	m := seg.man
	m.Chunks = append([]ChunkRecord(nil), seg.man.Chunks...)
	m.Summary.Subjects = append([]string(nil), m.Summary.Subjects...)
	m.Summary.Actors = append([]string(nil), m.Summary.Actors...)
	m.Summary.Methods = append([]string(nil), m.Summary.Methods...)
	if seg.man.Summary.Decisions != nil {
		m.Summary.Decisions = make(map[string]int64, len(seg.man.Summary.Decisions))
		for k, v := range seg.man.Summary.Decisions {
			m.Summary.Decisions[k] = v
		}
	}
	name := ChunkName(seg.id, len(m.Chunks)+1)
	object := sessionPath(m.Day, m.Session) + name
	data := gz.Bytes()
	cctx, cancel := context.WithTimeout(ctx, r.opts.UploadTimeout)
	err := r.sink.Put(cctx, object, data)
	cancel()
	if errors.Is(err, ErrExists) {
		var n int
		if data, n, err = r.adoptChunk(ctx, sp, files, seg, object, lines); err == nil {
			take, lines, sums = take[:n], lines[:n], sums[:n]
		}
	}
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	prev := m.Head
	if prev == "" {
		prev = m.Genesis
	}
	rec := ChunkRecord{Name: name, FirstSeq: take[0].seq, Count: int64(len(take)), Prev: prev, Head: lineHash(lines[len(lines)-1]), SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data))}
	m.Chunks = append(m.Chunks, rec)
	m.Events += rec.Count
	m.Head = rec.Head
	for _, sum := range sums {
		m.Summary.add(sum)
		if sum.kind == KindClose {
			m.Closed = true
		}
	}
	if err := r.saveState(&m); err != nil {
		return err
	}
	r.chunks.Add(1)
	counts := map[uint64]int64{}
	var kept int64
	taken := 0
	for _, p := range take {
		counts[p.fileNo]++
		taken += p.n
		if p.line != nil {
			kept += int64(p.n)
		}
	}
	seg.mu.Lock()
	seg.man = m
	seg.manifestDirty = true
	seg.pendingLen -= taken
	// The events taken are the first pending ones. The rest move to the
	// front of the same array, so that under load it is not reallocated,
	// and the places they leave are cleared, so that uploaded lines can go.
	rest := copy(seg.pending, seg.pending[len(take):])
	clear(seg.pending[rest:])
	seg.pending = seg.pending[:rest]
	if rest == 0 && cap(seg.pending) > 4096 {
		seg.pending = nil
	}
	seg.mu.Unlock()
	r.memPending.Add(-kept)
	for n, c := range counts {
		sp.release(n, c)
	}
	return nil
}

// pendingLine returns a pending event's line and summary, read back from
// the spool when it was spilled.
func (r *Recorder) pendingLine(sp *spool, files map[uint64]*os.File, seg *segment, p pendingEvent) ([]byte, eventSummary, error) {
	if p.line != nil {
		return p.line, p.sum, nil
	}
	line, err := sp.readAt(files, p.fileNo, p.off, p.n)
	if err != nil {
		return nil, eventSummary{}, err
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil, eventSummary{}, fmt.Errorf("recorder: spooled event %s#%d: %w", seg.id, p.seq, err)
	}
	return line, summarize(&ev), nil
}

// adoptChunk reads a chunk object that exists under the name of the next
// chunk and checks that it holds exactly the next pending events (a
// previous process uploaded it before it crashed). It returns the
// object's bytes and how many events it holds. lines are the events about
// to be uploaded; the object may hold more of the pending ones.
func (r *Recorder) adoptChunk(ctx context.Context, sp *spool, files map[uint64]*os.File, seg *segment, object string, lines [][]byte) ([]byte, int, error) {
	data, err := r.sink.Get(ctx, object)
	if err != nil {
		return nil, 0, err
	}
	_, have, derr := decodeChunk(data)
	if derr != nil || len(have) == 0 {
		return nil, 0, fmt.Errorf("recorder: %s exists in the sink and is not a chunk this writer can take over (%v); it is never replaced", object, derr)
	}
	seg.mu.Lock()
	pending := append([]pendingEvent(nil), seg.pending...)
	seg.mu.Unlock()
	if len(have) > len(pending) {
		return nil, 0, fmt.Errorf("recorder: %s exists in the sink with %d events, more than the %d pending; it is never replaced", object, len(have), len(pending))
	}
	for i, line := range have {
		want := []byte(nil)
		if i < len(lines) {
			want = lines[i]
		} else if want, _, err = r.pendingLine(sp, files, seg, pending[i]); err != nil {
			return nil, 0, err
		}
		if !bytes.Equal(line, want) {
			return nil, 0, fmt.Errorf("recorder: %s exists in the sink and differs from the events it should hold (at event %d); it is never replaced", object, pending[i].seq)
		}
	}
	if len(have) > len(lines) {
		return nil, 0, errTakeMore{len(have)}
	}
	r.log.Info("recorder: a chunk uploaded before a restart was found in the sink and taken as it is", "object", object, "events", len(have))
	return data, len(have), nil
}

// errTakeMore says that a chunk found in the sink holds more events than
// were taken for it: the upload is retried taking that many.
type errTakeMore struct{ n int }

func (e errTakeMore) Error() string {
	return fmt.Sprintf("recorder: the chunk in the sink holds %d events; taking them", e.n)
}

// putManifest signs and uploads the segment's next manifest, a new object
// with the next sequence. A sequence already taken (a previous process
// wrote it and crashed before recording it) is skipped.
func (r *Recorder) putManifest(ctx context.Context, seg *segment) error {
	m := seg.man
	m.Updated = r.now().UTC()
	for attempt := 0; ; attempt++ {
		m.Sequence++
		if r.signer != nil {
			if err := r.signer.sign(&m); err != nil {
				return fmt.Errorf("recorder: sign manifest: %w", err)
			}
		}
		b, err := json.MarshalIndent(&m, "", "  ")
		if err != nil {
			return fmt.Errorf("recorder: manifest: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, r.opts.UploadTimeout)
		err = r.sink.Put(cctx, sessionPath(m.Day, m.Session)+ManifestName(seg.id, m.Sequence), b)
		cancel()
		if errors.Is(err, ErrExists) && attempt < 16 {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	seg.mu.Lock()
	seg.man.Sequence = m.Sequence
	seg.manifestDirty, seg.manifestAt = false, r.now()
	seg.mu.Unlock()
	r.noteManifest(&m)
	r.lastErr.Store(nil)
	return nil
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
	if r.ownsRedis != nil {
		r.ownsRedis.Close()
	}
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
