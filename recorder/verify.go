package recorder

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Problem is one integrity failure found by Verify.
type Problem struct {
	// Session and Segment locate the problem.
	Session string
	Segment string
	// Chunk is the object at fault (a chunk, or a checkpoint), when one is.
	Chunk string
	// Seq is the first bad event, or -1.
	Seq     int64
	Message string
}

// String names the session, chunk and event at fault and what is wrong.
func (p Problem) String() string {
	var where []string
	if p.Chunk != "" {
		if strings.HasPrefix(p.Chunk, CheckpointDir) {
			where = append(where, "checkpoint "+p.Chunk)
		} else {
			where = append(where, "chunk "+p.Chunk)
		}
	}
	if p.Seq >= 0 {
		where = append(where, fmt.Sprintf("event %s#%d", p.Segment, p.Seq))
	} else if p.Segment != "" {
		where = append(where, "segment "+p.Segment)
	}
	if len(where) == 0 {
		return fmt.Sprintf("session %s: %s", p.Session, p.Message)
	}
	return fmt.Sprintf("session %s: %s: %s", p.Session, strings.Join(where, ", "), p.Message)
}

// VerifyResult is the outcome of verifying one session.
type VerifyResult struct {
	// Session is the session verified.
	Session string
	// Segments, Chunks and Events count what was checked.
	Segments int
	Chunks   int
	Events   int64
	// Signed counts manifests whose signature was checked.
	Signed int
	// Checkpoints counts the checkpoint entries of the session checked.
	Checkpoints int
	// Problems lists the first problem of each bad segment, and what the
	// checkpoints and the segments' links to each other contradict;
	// empty is intact.
	Problems []Problem
	// Warnings are not failures (e.g. a segment still being written).
	Warnings []string
}

// OK reports an intact session.
func (v *VerifyResult) OK() bool { return len(v.Problems) == 0 }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// PublicKey, when set, requires every manifest and checkpoint to carry
	// a valid signature by it.
	PublicKey ed25519.PublicKey
	// IdleGap is the writers' idle gap for manifests that do not say
	// theirs; default 30 minutes.
	IdleGap time.Duration
	// Slack is added to the idle gap: a segment whose last event is older
	// than both and that is not closed was cut short (or its writer died
	// with its spool). Default 10 minutes.
	Slack time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (o VerifyOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// segCheck is what verifying one segment established.
type segCheck struct {
	day, id  string
	manifest *Manifest
	chunks   bool // chunk objects exist
	bad      bool // a problem was reported: no further claims about it
	events   int64
	closed   bool
	last     time.Time
	want     map[int64]bool   // event counts whose head is needed
	heads    map[int64]string // head after that many events
}

// Verify checks every segment of a session: manifests (and signatures),
// chunks present and unaltered, each event chained to the previous one,
// and what the session's checkpoints and its segments' links to each
// other say must still be there: a manifest rolled back, chunks or whole
// segments deleted, a segment left open long after its idle gap. It names
// the first bad chunk or event of each segment. An error is returned only
// when the sink cannot be read.
func (r *Reader) Verify(ctx context.Context, id string, opts VerifyOptions) (*VerifyResult, error) {
	dirs, err := r.sessionDirs(ctx, id)
	if errors.Is(err, ErrNotExist) {
		if res, gerr := r.verifyGone(ctx, id, opts); gerr != nil || res != nil {
			return res, gerr
		}
	}
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Session: id}
	days := make([]string, 0, len(dirs))
	for d := range dirs {
		days = append(days, d)
	}
	sort.Strings(days)

	// The segments found: by id, with their newest manifest.
	segs := map[string]*segCheck{}
	var order []*segCheck
	present := map[string]map[string]bool{} // day -> object base names
	for _, day := range days {
		present[day] = map[string]bool{}
		for _, o := range dirs[day] {
			base := strings.TrimPrefix(o, sessionPath(day, id))
			present[day][base] = true
			seg := ""
			switch {
			case strings.HasSuffix(base, manifestSuffix):
				seg, _, _ = parseManifestName(base)
			case strings.HasSuffix(base, ".jsonl.gz"):
				if i := strings.LastIndex(base, "-"); i > 0 {
					seg = base[:i]
				}
			}
			if seg == "" {
				continue
			}
			sc := segs[seg]
			if sc == nil {
				sc = &segCheck{day: day, id: seg, want: map[int64]bool{}, heads: map[int64]string{}}
				segs[seg] = sc
				order = append(order, sc)
			} else if sc.day != day {
				res.Problems = append(res.Problems, Problem{Session: id, Segment: seg, Seq: -1, Message: fmt.Sprintf("segment found in two day folders, %s and %s", sc.day, day)})
				sc.bad = true
			}
			if strings.HasSuffix(base, ".jsonl.gz") {
				sc.chunks = true
			}
		}
	}
	fail := func(sc *segCheck, chunk string, seq int64, format string, args ...any) {
		res.Problems = append(res.Problems, Problem{Session: id, Segment: sc.id, Chunk: chunk, Seq: seq, Message: fmt.Sprintf(format, args...)})
		sc.bad = true
	}

	// Newest manifests, read and checked before any chunk: they say which
	// heads of other segments must be kept.
	for _, sc := range order {
		newest := newestManifests(dirs[sc.day])
		name, ok := newest[sc.id]
		if !ok {
			continue
		}
		res.Segments++
		m, err := r.checkedManifest(ctx, res, sc, name, opts, fail)
		if err != nil {
			return nil, err
		}
		sc.manifest = m
	}
	// The checkpoints of the session's days.
	entries, err := r.sessionCheckpoints(ctx, res, id, days, opts)
	if err != nil {
		return nil, err
	}
	for _, sc := range order {
		if m := sc.manifest; m != nil && m.Previous != nil && m.Previous.Events > 0 {
			if p := segs[m.Previous.Segment]; p != nil {
				p.want[m.Previous.Events] = true
			}
		}
	}
	for seg, e := range entries {
		if sc := segs[seg]; sc != nil && e.entry.Events > 0 {
			sc.want[e.entry.Events] = true
		}
	}

	// Chunks and chains.
	for _, sc := range order {
		switch {
		case sc.bad:
		case sc.manifest == nil:
			fail(sc, ChunkName(sc.id, 1), -1, "chunks without a manifest: no %s*%s was found", sc.id, manifestSuffix)
		default:
			if err := r.verifySegment(ctx, res, sc, present[sc.day], fail); err != nil {
				return nil, err
			}
		}
	}

	// What other segments and the checkpoints say must be there.
	for _, sc := range order {
		m := sc.manifest
		if sc.bad || m == nil || m.Previous == nil {
			continue
		}
		p := m.Previous
		prev := segs[p.Segment]
		switch {
		case prev == nil:
			fail(sc, "", -1, "the segment before it, %s (day %s, %d events), is missing: this segment names it (deleted?)", p.Segment, p.Day, p.Events)
		case prev.bad:
		case prev.events < p.Events:
			fail(prev, "", -1, "segment %s recorded this one with %d events, but only %d remain (cut short)", sc.id, p.Events, prev.events)
		case p.Events > 0 && prev.heads[p.Events] != p.Head:
			fail(prev, "", p.Events-1, "event differs from the head segment %s recorded for it (altered or replaced)", sc.id)
		}
	}
	segNames := make([]string, 0, len(entries))
	for seg := range entries {
		segNames = append(segNames, seg)
	}
	sort.Strings(segNames)
	for _, seg := range segNames {
		e := entries[seg]
		sc := segs[seg]
		if sc == nil {
			res.Problems = append(res.Problems, Problem{Session: id, Segment: seg, Chunk: e.name, Seq: -1,
				Message: fmt.Sprintf("segment missing: the checkpoint lists it with manifest %d and %d events (deleted?)", e.entry.Sequence, e.entry.Events)})
			continue
		}
		if sc.bad || sc.manifest == nil {
			continue
		}
		switch {
		case sc.manifest.Sequence < e.entry.Sequence:
			fail(sc, e.name, -1, "manifest rolled back: the newest is %s, but the checkpoint lists manifest %d with %d events", ManifestName(sc.id, sc.manifest.Sequence), e.entry.Sequence, e.entry.Events)
		case sc.events < e.entry.Events:
			fail(sc, e.name, -1, "events missing: the checkpoint lists %d events, only %d remain", e.entry.Events, sc.events)
		case e.entry.Events > 0 && sc.heads[e.entry.Events] != e.entry.Head:
			fail(sc, e.name, e.entry.Events-1, "event differs from the head the checkpoint lists for it (altered or replaced)")
		case e.entry.Closed && !sc.closed:
			fail(sc, e.name, -1, "the checkpoint lists the segment as closed, but its close event is gone")
		}
	}
	now := opts.now()
	for _, sc := range order {
		if sc.bad || sc.manifest == nil || sc.closed {
			continue
		}
		gap := opts.IdleGap
		if d, err := time.ParseDuration(sc.manifest.IdleGap); err == nil && d > 0 {
			gap = d
		}
		if gap <= 0 {
			gap = 30 * time.Minute
		}
		slack := opts.Slack
		if slack <= 0 {
			slack = 10 * time.Minute
		}
		if !sc.last.IsZero() && now.Sub(sc.last) > gap+slack {
			fail(sc, "", -1, "not closed, and its last event (%s) is older than its idle gap (%s) plus %s: the segment was cut short, or its writer stopped and its spool was never recovered",
				sc.last.UTC().Format(time.RFC3339), gap, slack)
			continue
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s is not closed: its writer is running or stopped without finishing", sc.id))
	}
	return res, nil
}

// checkedManifest reads a segment's newest manifest and checks its
// signature and what binds it to its place.
func (r *Reader) checkedManifest(ctx context.Context, res *VerifyResult, sc *segCheck, name string, opts VerifyOptions, fail func(*segCheck, string, int64, string, ...any)) (*Manifest, error) {
	b, err := r.sink.Get(ctx, name)
	if errors.Is(err, ErrNotExist) {
		fail(sc, "", -1, "manifest missing")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		fail(sc, "", -1, "manifest %s unreadable: %v", path.Base(name), err)
		return nil, nil
	}
	if opts.PublicKey != nil {
		if err := checkSignature(&m, opts.PublicKey); err != nil {
			fail(sc, "", -1, "manifest %s signature: %v", path.Base(name), err)
			return nil, nil
		}
		res.Signed++
	} else if m.Signature != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s: manifest signed by key %s, not checked (no public key given)", sc.id, m.KeyID))
	}
	_, seq, _ := parseManifestName(path.Base(name))
	dir := sessionPath(sc.day, res.Session)
	switch {
	case m.Session != res.Session || m.Segment != sc.id || m.Day != sc.day:
		fail(sc, "", -1, "manifest names session %s segment %s day %s, but is stored as %s%s", m.Session, m.Segment, m.Day, dir, path.Base(name))
	case m.Sequence != seq:
		fail(sc, "", -1, "manifest %s says it is sequence %d", path.Base(name), m.Sequence)
	case (seq == 0) != (m.Version < 2):
		fail(sc, "", -1, "manifest %s is version %d, which is not stored under that name", path.Base(name), m.Version)
	case m.Genesis != Genesis(res.Session, sc.id, m.Previous):
		fail(sc, "", -1, "manifest genesis hash does not bind it to this session, segment and the segment before it")
	default:
		return &m, nil
	}
	return nil, nil
}

func (r *Reader) verifySegment(ctx context.Context, res *VerifyResult, sc *segCheck, present map[string]bool, fail func(*segCheck, string, int64, string, ...any)) error {
	dir := sessionPath(sc.day, res.Session)
	m := sc.manifest
	failAt := func(chunk string, seq int64, format string, args ...any) { fail(sc, chunk, seq, format, args...) }
	prev := m.Genesis
	var seq int64
	closed := false
	note := func(evs []*Event, lines [][]byte, from int64) {
		for i, e := range evs {
			if n := from + int64(i) + 1; sc.want[n] {
				sc.heads[n] = lineHash(lines[i])
			}
			if e.Time.After(sc.last) {
				sc.last = e.Time
			}
		}
	}
	for i, c := range m.Chunks {
		want := ChunkName(sc.id, i+1)
		if c.Name != want {
			failAt(c.Name, -1, "manifest lists chunk %d as %s, want %s", i+1, c.Name, want)
			return nil
		}
		if c.FirstSeq != seq || c.Prev != prev {
			failAt(c.Name, -1, "manifest entry does not continue the previous chunk")
			return nil
		}
		data, err := r.sink.Get(ctx, dir+c.Name)
		if errors.Is(err, ErrNotExist) {
			failAt(c.Name, -1, "chunk missing (events %d to %d)", c.FirstSeq, c.FirstSeq+c.Count-1)
			return nil
		}
		if err != nil {
			return err
		}
		res.Chunks++
		evs, lines, derr := decodeChunk(data)
		next, head, isClosed, ok := checkEvents(res.Session, sc.id, c.Name, evs, lines, seq, prev, closed, failAt)
		if !ok {
			return nil
		}
		if derr != nil {
			failAt(c.Name, -1, "chunk corrupt after event %d: %v", next-1, derr)
			return nil
		}
		sum := sha256.Sum256(data)
		if int64(len(evs)) == c.Count && head != c.Head {
			failAt(c.Name, next-1, "event altered: its hash differs from the chain head in the manifest")
			return nil
		}
		if int64(len(evs)) != c.Count {
			failAt(c.Name, -1, "chunk holds events %d to %d, the manifest lists %d to %d", c.FirstSeq, next-1, c.FirstSeq, c.FirstSeq+c.Count-1)
			return nil
		}
		if hex.EncodeToString(sum[:]) != c.SHA256 {
			failAt(c.Name, -1, "chunk bytes differ from the manifest's SHA-256 (re-compressed or altered)")
			return nil
		}
		note(evs, lines, seq)
		seq, prev, closed = next, head, isClosed
		res.Events += int64(len(evs))
	}
	if m.Events != seq || (len(m.Chunks) > 0 && m.Head != prev) {
		failAt("", -1, "manifest totals (%d events) do not match its chunks (%d events)", m.Events, seq)
		return nil
	}
	if m.Closed != closed {
		failAt("", -1, "manifest closed=%v but the last event says closed=%v", m.Closed, closed)
		return nil
	}
	// Chunks beyond the manifest.
	for n := len(m.Chunks) + 1; present[ChunkName(sc.id, n)]; n++ {
		name := ChunkName(sc.id, n)
		if closed {
			failAt(name, -1, "chunk appended after the segment was closed")
			return nil
		}
		data, err := r.sink.Get(ctx, dir+name)
		if err != nil {
			return err
		}
		evs, lines, derr := decodeChunk(data)
		next, head, isClosed, ok := checkEvents(res.Session, sc.id, name, evs, lines, seq, prev, closed, failAt)
		if !ok {
			return nil
		}
		if derr != nil {
			failAt(name, -1, "chunk corrupt after event %d: %v", next-1, derr)
			return nil
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s: chunk %s is not in the manifest yet (writer still running?); its events chain correctly", sc.id, name))
		note(evs, lines, seq)
		seq, prev, closed = next, head, isClosed
		res.Chunks++
		res.Events += int64(len(evs))
	}
	sc.events, sc.closed = seq, closed
	return nil
}

// checkEvents walks the events of one chunk from seq and prev. It reports
// the first bad event through fail and returns ok false.
func checkEvents(id, seg, chunk string, evs []*Event, lines [][]byte, seq int64, prev string, closed bool, fail func(string, int64, string, ...any)) (int64, string, bool, bool) {
	for i, e := range evs {
		if closed {
			fail(chunk, e.Seq, "event appended after the segment was closed")
			return 0, "", false, false
		}
		if e.Session != id || e.Segment != seg {
			fail(chunk, e.Seq, "event belongs to session %s segment %s", e.Session, e.Segment)
			return 0, "", false, false
		}
		if e.Seq != seq {
			if e.Seq < seq {
				fail(chunk, e.Seq, "event out of order: found after event %d (reordered or duplicated)", seq-1)
				return 0, "", false, false
			}
			for _, later := range evs[i+1:] {
				if later.Seq == seq {
					fail(chunk, seq, "event out of order: found after event %d (reordered)", e.Seq)
					return 0, "", false, false
				}
			}
			fail(chunk, seq, "event missing (the next one found is %d)", e.Seq)
			return 0, "", false, false
		}
		if e.Prev != prev {
			if i > 0 {
				fail(chunk, seq-1, "event altered: its hash does not match the next event's chain link")
			} else {
				fail(chunk, seq, "event does not chain to the previous chunk (altered, or the chunk was replaced)")
			}
			return 0, "", false, false
		}
		prev = lineHash(lines[i])
		seq++
		if e.Kind == KindClose {
			closed = true
		}
	}
	return seq, prev, closed, true
}

// checkpointObject is one checkpoint read from the sink.
type checkpointObject struct {
	name string
	cp   *Checkpoint
	err  error // unreadable
}

// checkpointRef is the checkpoint entry of a segment with the highest
// manifest sequence, and the checkpoint that holds it.
type checkpointRef struct {
	name  string
	entry CheckpointEntry
}

// checkpointsOfDay reads (once per Reader) the checkpoints filed under a
// segment day.
func (r *Reader) checkpointsOfDay(ctx context.Context, day string) ([]*checkpointObject, error) {
	r.mu.Lock()
	if cps, ok := r.checkpoints[day]; ok {
		r.mu.Unlock()
		return cps, nil
	}
	r.mu.Unlock()
	names, _, err := r.sink.List(ctx, CheckpointDir+day+"/", "")
	if err != nil {
		return nil, err
	}
	out := make([]*checkpointObject, len(names))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := &checkpointObject{name: name}
			out[i] = o
			b, err := r.sink.Get(ctx, name)
			if err != nil && !errors.Is(err, ErrNotExist) {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
				return
			}
			var c Checkpoint
			if err == nil {
				err = json.Unmarshal(b, &c)
			}
			if err == nil && c.Day != day {
				err = fmt.Errorf("it lists segments of day %s", c.Day)
			}
			if err != nil {
				o.err = err
				return
			}
			o.cp = &c
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	r.mu.Lock()
	if r.checkpoints == nil {
		r.checkpoints = map[string][]*checkpointObject{}
	}
	r.checkpoints[day] = out
	r.mu.Unlock()
	return out, nil
}

// sessionCheckpoints collects, from the checkpoints of days, the entry
// with the highest manifest sequence of each segment of session id. A
// checkpoint that is unreadable, or not signed by the key when one is
// required, is a problem: checkpoints are what rollback is measured by.
func (r *Reader) sessionCheckpoints(ctx context.Context, res *VerifyResult, id string, days []string, opts VerifyOptions) (map[string]checkpointRef, error) {
	out := map[string]checkpointRef{}
	unchecked := 0
	for _, day := range days {
		cps, err := r.checkpointsOfDay(ctx, day)
		if err != nil {
			return nil, err
		}
		for _, o := range cps {
			if o.err != nil {
				res.Problems = append(res.Problems, Problem{Session: id, Chunk: o.name, Seq: -1, Message: fmt.Sprintf("checkpoint unreadable: %v", o.err)})
				continue
			}
			mine := false
			for _, e := range o.cp.Segments {
				mine = mine || e.Session == id
			}
			if !mine {
				continue
			}
			if opts.PublicKey != nil {
				if err := checkSignature(o.cp, opts.PublicKey); err != nil {
					res.Problems = append(res.Problems, Problem{Session: id, Chunk: o.name, Seq: -1, Message: fmt.Sprintf("checkpoint signature: %v", err)})
					continue
				}
			} else if o.cp.Signature != "" {
				unchecked++
			}
			for _, e := range o.cp.Segments {
				if e.Session != id {
					continue
				}
				res.Checkpoints++
				if have, ok := out[e.Segment]; !ok || e.Sequence > have.entry.Sequence {
					out[e.Segment] = checkpointRef{name: o.name, entry: e}
				}
			}
		}
	}
	if unchecked > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d checkpoints signed, not checked (no public key given)", unchecked))
	}
	return out, nil
}

// checkpointDays lists the day folders holding checkpoints.
func (r *Reader) checkpointDays(ctx context.Context) ([]string, error) {
	var days []string
	_, years, err := r.sink.List(ctx, CheckpointDir, "/")
	if err != nil {
		return nil, err
	}
	for _, y := range years {
		_, months, err := r.sink.List(ctx, y, "/")
		if err != nil {
			return nil, err
		}
		for _, m := range months {
			_, ds, err := r.sink.List(ctx, m, "/")
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				day := strings.TrimSuffix(strings.TrimPrefix(d, CheckpointDir), "/")
				if _, ok := dayTime(day); ok {
					days = append(days, day)
				}
			}
		}
	}
	sort.Strings(days)
	return days, nil
}

// verifyGone answers Verify for a session of which nothing is left: a
// failure when a checkpoint lists it (it was deleted), nil otherwise.
func (r *Reader) verifyGone(ctx context.Context, id string, opts VerifyOptions) (*VerifyResult, error) {
	days, err := r.checkpointDays(ctx)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Session: id}
	entries, err := r.sessionCheckpoints(ctx, res, id, days, opts)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, nil
	}
	segs := make([]string, 0, len(entries))
	for s := range entries {
		segs = append(segs, s)
	}
	sort.Strings(segs)
	for _, s := range segs {
		e := entries[s]
		res.Problems = append(res.Problems, Problem{Session: id, Segment: s, Chunk: e.name, Seq: -1,
			Message: fmt.Sprintf("segment missing: the checkpoint lists it with manifest %d and %d events, and nothing of the session is left (deleted?)", e.entry.Sequence, e.entry.Events)})
	}
	return res, nil
}

// MissingSessions reads every checkpoint filed under a day at or after
// the oldest day still in the sink (older ones follow the recordings out
// by retention) and reports the sessions they list that are gone entirely
// (present says whether a session exists). Unreadable or, with a key,
// badly signed checkpoints are problems too.
func (r *Reader) MissingSessions(ctx context.Context, present func(id string) bool, opts VerifyOptions) ([]Problem, error) {
	days, err := r.Days(ctx)
	if err != nil {
		return nil, err
	}
	cpDays, err := r.checkpointDays(ctx)
	if err != nil {
		return nil, err
	}
	var out []Problem
	seen := map[string]bool{}
	for _, day := range cpDays {
		if len(days) > 0 && day < days[0] {
			continue
		}
		cps, err := r.checkpointsOfDay(ctx, day)
		if err != nil {
			return nil, err
		}
		for _, o := range cps {
			if o.err != nil {
				out = append(out, Problem{Chunk: o.name, Seq: -1, Message: fmt.Sprintf("checkpoint unreadable: %v", o.err)})
				continue
			}
			if opts.PublicKey != nil {
				if err := checkSignature(o.cp, opts.PublicKey); err != nil {
					out = append(out, Problem{Chunk: o.name, Seq: -1, Message: fmt.Sprintf("checkpoint signature: %v", err)})
					continue
				}
			}
			for _, e := range o.cp.Segments {
				if seen[e.Session] || present(e.Session) {
					continue
				}
				seen[e.Session] = true
				out = append(out, Problem{Session: e.Session, Segment: e.Segment, Chunk: o.name, Seq: -1,
					Message: "session missing: the checkpoint lists it, and nothing of it is left (deleted?)"})
			}
		}
	}
	return out, nil
}

// Retention describes a sink's retention policy (Bucket Lock).
type Retention struct {
	// Period is how long objects are retained; 0 is no policy.
	Period time.Duration
	// Locked says the policy can no longer be shortened or removed.
	Locked bool
}

// retentionSink is a sink that can report its retention policy.
type retentionSink interface {
	Retention(ctx context.Context) (Retention, error)
}

// RetentionOf reports the retention policy of a sink; ok is false for a
// sink that has none to report (a local directory).
func RetentionOf(ctx context.Context, s Sink) (ret Retention, ok bool, err error) {
	rs, ok := s.(retentionSink)
	if !ok {
		return Retention{}, false, nil
	}
	ret, err = rs.Retention(ctx)
	return ret, true, err
}
