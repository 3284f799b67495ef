package recorder

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Reader reads what recorders uploaded to a sink.
type Reader struct {
	sink Sink
}

// NewReader reads from sink.
func NewReader(sink Sink) *Reader { return &Reader{sink: sink} }

// Filter selects sessions in List. Empty fields match everything.
type Filter struct {
	// Since and Until bound the session's activity.
	Since, Until time.Time
	// Subject, Actor, Method (a GCP method id) and Decision must appear in
	// at least one segment of the session.
	Subject, Actor, Method, Decision string
}

// SessionInfo summarises one session from its manifests.
type SessionInfo struct {
	// ID is the session id.
	ID string
	// Segments are the manifests of the session, in segment order.
	Segments []*Manifest
	// Summary merges the segments' summaries.
	Summary Summary
	// Events counts the events in the manifests.
	Events int64
	// Broken names manifests that could not be read.
	Broken []string
}

// Progress reports done of total steps; it may be nil.
type Progress func(done, total int)

// Days lists the YYYY/MM/DD folders of the sink in order.
func (r *Reader) Days(ctx context.Context) ([]string, error) {
	var days []string
	_, years, err := r.sink.List(ctx, "", "/")
	if err != nil {
		return nil, err
	}
	for _, y := range years {
		if !digits(y, 4) {
			continue
		}
		_, months, err := r.sink.List(ctx, y, "/")
		if err != nil {
			return nil, err
		}
		for _, m := range months {
			if !digits(strings.TrimPrefix(m, y), 2) {
				continue
			}
			_, ds, err := r.sink.List(ctx, m, "/")
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				if digits(strings.TrimPrefix(d, m), 2) {
					days = append(days, strings.TrimSuffix(d, "/"))
				}
			}
		}
	}
	sort.Strings(days)
	return days, nil
}

// digits reports whether s is n digits followed by "/".
func digits(s string, n int) bool {
	if len(s) != n+1 || s[n] != '/' {
		return false
	}
	_, err := strconv.Atoi(s[:n])
	return err == nil
}

func dayTime(day string) (time.Time, bool) {
	t, err := time.Parse("2006/01/02", day)
	return t, err == nil
}

// sessionDirs finds the folders of a session: day -> object names.
func (r *Reader) sessionDirs(ctx context.Context, id string) (map[string][]string, error) {
	if !ValidSessionID(id) {
		return nil, fmt.Errorf("recorder: %q is not a session id", id)
	}
	days, err := r.Days(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, d := range days {
		objs, _, err := r.sink.List(ctx, sessionPath(d, id), "")
		if err != nil {
			return nil, err
		}
		if len(objs) > 0 {
			out[d] = objs
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("recorder: session %s: %w", id, ErrNotExist)
	}
	return out, nil
}

// List returns the sessions matching f, newest first.
func (r *Reader) List(ctx context.Context, f Filter, progress Progress) ([]*SessionInfo, error) {
	days, err := r.Days(ctx)
	if err != nil {
		return nil, err
	}
	type dirRef struct{ day, session string }
	var dirs []dirRef
	for _, d := range days {
		if t, ok := dayTime(d); ok && !f.Until.IsZero() && t.After(f.Until) {
			continue
		}
		_, subs, err := r.sink.List(ctx, d+"/", "/")
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			dirs = append(dirs, dirRef{d, strings.TrimSuffix(strings.TrimPrefix(s, d+"/"), "/")})
		}
	}
	byID := map[string]*SessionInfo{}
	for i, dr := range dirs {
		if progress != nil {
			progress(i, len(dirs))
		}
		objs, _, err := r.sink.List(ctx, sessionPath(dr.day, dr.session), "")
		if err != nil {
			return nil, err
		}
		info := byID[dr.session]
		if info == nil {
			info = &SessionInfo{ID: dr.session}
			byID[dr.session] = info
		}
		for _, o := range objs {
			if !strings.HasSuffix(o, ".manifest.json") {
				continue
			}
			m, err := r.manifest(ctx, o)
			if err != nil {
				info.Broken = append(info.Broken, o)
				continue
			}
			info.Segments = append(info.Segments, m)
		}
	}
	if progress != nil {
		progress(len(dirs), len(dirs))
	}
	var out []*SessionInfo
	for _, info := range byID {
		sort.Slice(info.Segments, func(i, j int) bool { return info.Segments[i].Segment < info.Segments[j].Segment })
		for _, m := range info.Segments {
			info.Events += m.Events
			mergeSummary(&info.Summary, &m.Summary)
		}
		if matches(info, f) {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Summary.First.Equal(out[j].Summary.First) {
			return out[i].Summary.First.After(out[j].Summary.First)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func mergeSummary(dst, s *Summary) {
	if !s.First.IsZero() && (dst.First.IsZero() || s.First.Before(dst.First)) {
		dst.First = s.First
	}
	if s.Last.After(dst.Last) {
		dst.Last = s.Last
	}
	for _, v := range s.Subjects {
		dst.Subjects = addUnique(dst.Subjects, v)
	}
	for _, v := range s.Actors {
		dst.Actors = addUnique(dst.Actors, v)
	}
	for _, v := range s.Methods {
		dst.Methods = addUnique(dst.Methods, v)
	}
	for k, v := range s.Decisions {
		if dst.Decisions == nil {
			dst.Decisions = map[string]int64{}
		}
		dst.Decisions[k] += v
	}
	dst.Requests += s.Requests
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func matches(info *SessionInfo, f Filter) bool {
	s := &info.Summary
	if !f.Since.IsZero() && s.Last.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && s.First.After(f.Until) {
		return false
	}
	if f.Subject != "" && !contains(s.Subjects, f.Subject) {
		return false
	}
	if f.Actor != "" && !contains(s.Actors, f.Actor) {
		return false
	}
	if f.Method != "" && !contains(s.Methods, f.Method) {
		return false
	}
	if f.Decision != "" && s.Decisions[f.Decision] == 0 {
		return false
	}
	return true
}

func (r *Reader) manifest(ctx context.Context, name string) (*Manifest, error) {
	b, err := r.sink.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("recorder: manifest %s: %w", name, err)
	}
	return &m, nil
}

// Session is a loaded session: every readable event, in time order.
type Session struct {
	// ID is the session id.
	ID string
	// Events are every readable event of every segment.
	Events []*Event
	// Manifests of the segments found.
	Manifests []*Manifest
	// Warnings name chunks that could not be read.
	Warnings []string
}

// Load reads every chunk of a session. It does not verify the chains (see
// Verify); unreadable chunks are named in Warnings.
func (r *Reader) Load(ctx context.Context, id string, progress Progress) (*Session, error) {
	dirs, err := r.sessionDirs(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &Session{ID: id}
	var chunks []string
	for _, objs := range dirs {
		for _, o := range objs {
			switch {
			case strings.HasSuffix(o, ".jsonl.gz"):
				chunks = append(chunks, o)
			case strings.HasSuffix(o, ".manifest.json"):
				if m, err := r.manifest(ctx, o); err == nil {
					s.Manifests = append(s.Manifests, m)
				} else {
					s.Warnings = append(s.Warnings, err.Error())
				}
			}
		}
	}
	sort.Strings(chunks)
	for i, c := range chunks {
		if progress != nil {
			progress(i, len(chunks))
		}
		b, err := r.sink.Get(ctx, c)
		if err != nil {
			s.Warnings = append(s.Warnings, err.Error())
			continue
		}
		evs, _, err := decodeChunk(b)
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("chunk %s: %v", c, err))
		}
		s.Events = append(s.Events, evs...)
	}
	if progress != nil {
		progress(len(chunks), len(chunks))
	}
	sort.SliceStable(s.Events, func(i, j int) bool {
		a, b := s.Events[i], s.Events[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Segment != b.Segment {
			return a.Segment < b.Segment
		}
		return a.Seq < b.Seq
	})
	return s, nil
}

// decodeChunk gunzips and parses a chunk; it returns the events read
// before any error, and their exact lines.
func decodeChunk(b []byte) ([]*Event, [][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("not gzip: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, fmt.Errorf("corrupt gzip: %w", err)
	}
	var evs []*Event
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<20), maxRecord)
	for n := 1; sc.Scan(); n++ {
		line := append([]byte(nil), sc.Bytes()...)
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return evs, lines, fmt.Errorf("line %d is not an event: %w", n, err)
		}
		evs = append(evs, &e)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return evs, lines, err
	}
	return evs, lines, nil
}

// Problem is one integrity failure found by Verify.
type Problem struct {
	// Session and Segment locate the problem.
	Session string
	Segment string
	// Chunk is the chunk object at fault, when one is.
	Chunk string
	// Seq is the first bad event, or -1.
	Seq     int64
	Message string
}

// String names the session, chunk and event at fault and what is wrong.
func (p Problem) String() string {
	var where []string
	if p.Chunk != "" {
		where = append(where, "chunk "+p.Chunk)
	}
	if p.Seq >= 0 {
		where = append(where, fmt.Sprintf("event %s#%d", p.Segment, p.Seq))
	} else if p.Chunk == "" && p.Segment != "" {
		where = append(where, "segment "+p.Segment)
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
	// Problems lists the first problem of each bad segment; empty is intact.
	Problems []Problem
	// Warnings are not failures (e.g. a segment still being written).
	Warnings []string
}

// OK reports an intact session.
func (v *VerifyResult) OK() bool { return len(v.Problems) == 0 }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// PublicKey, when set, requires every manifest to carry a valid
	// signature by it.
	PublicKey ed25519.PublicKey
}

// Verify checks every segment of a session: manifests (and signatures),
// chunks present and unaltered, and each event chained to the previous
// one. It names the first bad chunk or event of each segment. An error is
// returned only when the sink cannot be read.
func (r *Reader) Verify(ctx context.Context, id string, opts VerifyOptions) (*VerifyResult, error) {
	dirs, err := r.sessionDirs(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Session: id}
	days := make([]string, 0, len(dirs))
	for d := range dirs {
		days = append(days, d)
	}
	sort.Strings(days)
	for _, day := range days {
		objs := dirs[day]
		present := map[string]bool{}
		chunkSegs := map[string]bool{}
		var manifests []string
		for _, o := range objs {
			base := strings.TrimPrefix(o, sessionPath(day, id))
			present[base] = true
			switch {
			case strings.HasSuffix(base, ".manifest.json"):
				manifests = append(manifests, base)
			case strings.HasSuffix(base, ".jsonl.gz"):
				if i := strings.LastIndex(base, "-"); i > 0 {
					chunkSegs[base[:i]] = true
				}
			}
		}
		withManifest := map[string]bool{}
		for _, mn := range manifests {
			seg := strings.TrimSuffix(mn, ".manifest.json")
			withManifest[seg] = true
			res.Segments++
			if err := r.verifySegment(ctx, res, day, id, seg, present, opts); err != nil {
				return nil, err
			}
		}
		var orphans []string
		for seg := range chunkSegs {
			if !withManifest[seg] {
				orphans = append(orphans, seg)
			}
		}
		sort.Strings(orphans)
		for _, seg := range orphans {
			res.Problems = append(res.Problems, Problem{Session: id, Segment: seg, Chunk: ChunkName(seg, 1), Seq: -1, Message: "chunks without a manifest: the manifest " + ManifestName(seg) + " is missing"})
		}
	}
	return res, nil
}

func (r *Reader) verifySegment(ctx context.Context, res *VerifyResult, day, id, seg string, present map[string]bool, opts VerifyOptions) error {
	dir := sessionPath(day, id)
	fail := func(chunk string, seq int64, format string, args ...any) {
		res.Problems = append(res.Problems, Problem{Session: id, Segment: seg, Chunk: chunk, Seq: seq, Message: fmt.Sprintf(format, args...)})
	}
	b, err := r.sink.Get(ctx, dir+ManifestName(seg))
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			fail("", -1, "manifest missing")
			return nil
		}
		return err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		fail("", -1, "manifest unreadable: %v", err)
		return nil
	}
	if opts.PublicKey != nil {
		if err := checkSignature(&m, opts.PublicKey); err != nil {
			fail("", -1, "manifest signature: %v", err)
			return nil
		}
		res.Signed++
	} else if m.Signature != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s: manifest signed by key %s, not checked (no public key given)", seg, m.KeyID))
	}
	if m.Session != id || m.Segment != seg || m.Day != day {
		fail("", -1, "manifest names session %s segment %s day %s, but is stored as %s%s", m.Session, m.Segment, m.Day, dir, ManifestName(seg))
		return nil
	}
	genesis := Genesis(id, seg)
	if m.Genesis != genesis {
		fail("", -1, "manifest genesis hash does not bind it to this session and segment")
		return nil
	}
	prev := genesis
	var seq int64
	closed := false
	for i, c := range m.Chunks {
		want := ChunkName(seg, i+1)
		if c.Name != want {
			fail(c.Name, -1, "manifest lists chunk %d as %s, want %s", i+1, c.Name, want)
			return nil
		}
		if c.FirstSeq != seq || c.Prev != prev {
			fail(c.Name, -1, "manifest entry does not continue the previous chunk")
			return nil
		}
		data, err := r.sink.Get(ctx, dir+c.Name)
		if errors.Is(err, ErrNotExist) {
			fail(c.Name, -1, "chunk missing (events %d to %d)", c.FirstSeq, c.FirstSeq+c.Count-1)
			return nil
		}
		if err != nil {
			return err
		}
		res.Chunks++
		evs, lines, derr := decodeChunk(data)
		next, head, isClosed, ok := checkEvents(id, seg, c.Name, evs, lines, seq, prev, closed, fail)
		if !ok {
			return nil
		}
		if derr != nil {
			fail(c.Name, -1, "chunk corrupt after event %d: %v", next-1, derr)
			return nil
		}
		sum := sha256.Sum256(data)
		if int64(len(evs)) == c.Count && head != c.Head {
			fail(c.Name, next-1, "event altered: its hash differs from the chain head in the manifest")
			return nil
		}
		if int64(len(evs)) != c.Count {
			fail(c.Name, -1, "chunk holds events %d to %d, the manifest lists %d to %d", c.FirstSeq, next-1, c.FirstSeq, c.FirstSeq+c.Count-1)
			return nil
		}
		if hex.EncodeToString(sum[:]) != c.SHA256 {
			fail(c.Name, -1, "chunk bytes differ from the manifest's SHA-256 (re-compressed or altered)")
			return nil
		}
		seq, prev, closed = next, head, isClosed
		res.Events += int64(len(evs))
	}
	if m.Events != seq || (len(m.Chunks) > 0 && m.Head != prev) {
		fail("", -1, "manifest totals (%d events) do not match its chunks (%d events)", m.Events, seq)
		return nil
	}
	if m.Closed != closed {
		fail("", -1, "manifest closed=%v but the last event says closed=%v", m.Closed, closed)
		return nil
	}
	// Chunks beyond the manifest.
	for n := len(m.Chunks) + 1; present[ChunkName(seg, n)]; n++ {
		name := ChunkName(seg, n)
		if closed {
			fail(name, -1, "chunk appended after the segment was closed")
			return nil
		}
		data, err := r.sink.Get(ctx, dir+name)
		if err != nil {
			return err
		}
		evs, lines, derr := decodeChunk(data)
		next, head, isClosed, ok := checkEvents(id, seg, name, evs, lines, seq, prev, closed, fail)
		if !ok {
			return nil
		}
		if derr != nil {
			fail(name, -1, "chunk corrupt after event %d: %v", next-1, derr)
			return nil
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s: chunk %s is not in the manifest yet (writer still running?); its events chain correctly", seg, name))
		seq, prev, closed = next, head, isClosed
		res.Chunks++
		res.Events += int64(len(evs))
	}
	if !closed {
		res.Warnings = append(res.Warnings, fmt.Sprintf("segment %s is not closed: its writer is running or stopped without finishing", seg))
	}
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

// Prune deletes every day folder whose day ended before cutoff and returns
// the number of objects deleted. Use the bucket's lifecycle rule for GCS;
// Prune is meant for file:// sinks.
func (r *Reader) Prune(ctx context.Context, cutoff time.Time, progress Progress) (int, error) {
	days, err := r.Days(ctx)
	if err != nil {
		return 0, err
	}
	var old []string
	for _, d := range days {
		if t, ok := dayTime(d); ok && !t.Add(24*time.Hour).After(cutoff) {
			old = append(old, d)
		}
	}
	n := 0
	for i, d := range old {
		if progress != nil {
			progress(i, len(old))
		}
		objs, _, err := r.sink.List(ctx, d+"/", "")
		if err != nil {
			return n, err
		}
		for _, o := range objs {
			if err := r.sink.Delete(ctx, o); err != nil {
				return n, err
			}
			n++
		}
	}
	if progress != nil {
		progress(len(old), len(old))
	}
	return n, nil
}
