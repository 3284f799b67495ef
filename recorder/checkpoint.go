package recorder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// CheckpointVersion is the version of the checkpoint format written.
const CheckpointVersion = 1

// CheckpointDir is the folder of the sink holding checkpoints:
// checkpoints/YYYY/MM/DD/TIME-WRITER-SEQ.json, DAY being the folder day of
// the segments listed.
const CheckpointDir = "checkpoints/"

// Checkpoint is a writer's signed statement, written once per interval in
// which it wrote manifests, of the newest manifest of each of those
// segments: its sequence, event count and chain head. A manifest rolled
// back to an older one, chunks deleted after it, or a whole segment
// deleted then contradict a checkpoint. Checkpoints are written once and
// never replaced, and filed by the day folder of their segments, so that
// verifying a session reads those of its days only.
type Checkpoint struct {
	Version int `json:"version"`
	// Writer names the process; Seq numbers its checkpoints from 1.
	Writer string `json:"writer"`
	Seq    int64  `json:"seq"`
	// Time is when the checkpoint was written.
	Time time.Time `json:"time"`
	// Day is the YYYY/MM/DD folder of the segments listed.
	Day      string            `json:"day"`
	Segments []CheckpointEntry `json:"segments"`
	// KeyID and Signature are set when the writer signs (the manifests'
	// key): Ed25519 over the checkpoint's JSON with Signature empty.
	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// CheckpointEntry is the newest manifest of one segment at a checkpoint.
type CheckpointEntry struct {
	Session string `json:"session"`
	Segment string `json:"segment"`
	// Sequence is the manifest's sequence; Events and Head its totals.
	Sequence int64  `json:"sequence"`
	Events   int64  `json:"events"`
	Head     string `json:"head,omitempty"`
	Closed   bool   `json:"closed,omitempty"`
}

func (c *Checkpoint) unsigned() ([]byte, error) {
	x := *c
	x.Signature = ""
	return json.Marshal(&x)
}

func (c *Checkpoint) setSignature(keyID, sig string) { c.KeyID, c.Signature = keyID, sig }
func (c *Checkpoint) signature() (string, string)    { return c.KeyID, c.Signature }

// CheckpointName is the object name of a checkpoint.
func CheckpointName(day string, at time.Time, writer string, seq int64) string {
	return fmt.Sprintf("%s%s/%s-%s-%06d.json", CheckpointDir, day, at.UTC().Format("20060102T150405Z"), writer, seq)
}

// checkpointState is what the writer has yet to checkpoint: the newest
// manifest written of each segment since the last checkpoint that
// reached the sink. Under Recorder.cpMu.
type checkpointState struct {
	pending map[string]pendingEntry // by segment id
	seq     int64
	last    time.Time
}

type pendingEntry struct {
	day   string
	entry CheckpointEntry
}

// noteManifest records a manifest written for the next checkpoint.
func (r *Recorder) noteManifest(m *Manifest) {
	r.cpMu.Lock()
	defer r.cpMu.Unlock()
	if p, ok := r.cp.pending[m.Segment]; ok && p.entry.Sequence > m.Sequence {
		return
	}
	r.cp.pending[m.Segment] = pendingEntry{day: m.Day, entry: CheckpointEntry{
		Session: m.Session, Segment: m.Segment, Sequence: m.Sequence, Events: m.Events, Head: m.Head, Closed: m.Closed,
	}}
}

// checkpoint writes one checkpoint per segment day of the pending
// entries when the interval has passed (at once with force). Entries
// whose checkpoint could not be written stay pending.
func (r *Recorder) checkpoint(ctx context.Context, force bool) error {
	r.cpWrite.Lock()
	defer r.cpWrite.Unlock()
	now := r.now().UTC()
	r.cpMu.Lock()
	if len(r.cp.pending) == 0 || (!force && now.Sub(r.cp.last) < r.opts.CheckpointInterval) {
		r.cpMu.Unlock()
		return nil
	}
	byDay := map[string][]CheckpointEntry{}
	for _, p := range r.cp.pending {
		byDay[p.day] = append(byDay[p.day], p.entry)
	}
	r.cp.seq++
	seq := r.cp.seq
	r.cp.last = now
	r.cpMu.Unlock()

	days := make([]string, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	sort.Strings(days)
	var firstErr error
	for _, day := range days {
		entries := byDay[day]
		sort.Slice(entries, func(i, j int) bool {
			if entries[i].Session != entries[j].Session {
				return entries[i].Session < entries[j].Session
			}
			return entries[i].Segment < entries[j].Segment
		})
		c := Checkpoint{Version: CheckpointVersion, Writer: r.writer, Seq: seq, Time: now, Day: day, Segments: entries}
		err := r.putCheckpoint(ctx, &c)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Stopped by shutdown: Close writes the checkpoint itself.
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if err != nil {
			r.uploadErrors.Add(1)
			msg := err.Error()
			r.lastErr.Store(&msg)
			r.log.Warn("recorder: writing a checkpoint failed; retried at the next interval", "day", day, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		r.checkpoints.Add(1)
		// Done with what this checkpoint holds, unless a newer manifest
		// of the segment came meanwhile.
		r.cpMu.Lock()
		for _, e := range entries {
			if p, ok := r.cp.pending[e.Segment]; ok && p.entry.Sequence == e.Sequence {
				delete(r.cp.pending, e.Segment)
			}
		}
		r.cpMu.Unlock()
	}
	return firstErr
}

func (r *Recorder) putCheckpoint(ctx context.Context, c *Checkpoint) error {
	if r.signer != nil {
		if err := r.signer.sign(c); err != nil {
			return fmt.Errorf("recorder: sign checkpoint: %w", err)
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("recorder: checkpoint: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, r.opts.UploadTimeout)
	defer cancel()
	return r.sink.Put(cctx, CheckpointName(c.Day, c.Time, c.Writer, c.Seq), b)
}
