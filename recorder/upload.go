package recorder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Upload: spooled events become chunks and manifests in the sink.

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
