package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Recovery: a restarted recorder takes back its spooled segments.

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
