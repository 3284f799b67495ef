package recorder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Segments: the open chain of each session, its events appended and its
// close.

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
