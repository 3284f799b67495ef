package recorder

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/handoff"
)

// Reader reads what recorders uploaded to a sink.
type Reader struct {
	sink Sink

	mu          sync.Mutex
	checkpoints map[string][]*checkpointObject // by day folder
}

// NewReader reads from sink.
func NewReader(sink Sink) *Reader { return &Reader{sink: sink} }

// newestManifests picks, from the object names of one session folder, the
// newest manifest of each segment: segment -> object name.
func newestManifests(objs []string) map[string]string {
	type best struct {
		seq  int64
		name string
	}
	by := map[string]best{}
	for _, o := range objs {
		seg, seq, ok := parseManifestName(path.Base(o))
		if !ok {
			continue
		}
		if b, seen := by[seg]; !seen || seq > b.seq {
			by[seg] = best{seq, o}
		}
	}
	out := make(map[string]string, len(by))
	for seg, b := range by {
		out[seg] = b.name
	}
	return out
}

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
	if !handoff.ValidSessionID(id) {
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
	return r.list(ctx, f, nil, progress)
}

// Resolve finds the sessions an auditor's name stands for: the session of
// that id, or every NAME~TAG session of an agent-given name NAME (one per
// subject that used it), newest first.
func (r *Reader) Resolve(ctx context.Context, name string) ([]*SessionInfo, error) {
	return r.list(ctx, Filter{}, func(id string) bool { return id == name || strings.HasPrefix(id, name+"~") }, nil)
}

// list reads the sessions whose id want accepts (nil: all) and that match f.
func (r *Reader) list(ctx context.Context, f Filter, want func(id string) bool, progress Progress) ([]*SessionInfo, error) {
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
			id := strings.TrimSuffix(strings.TrimPrefix(s, d+"/"), "/")
			if want == nil || want(id) {
				dirs = append(dirs, dirRef{d, id})
			}
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
		newest := newestManifests(objs)
		names := make([]string, 0, len(newest))
		for _, o := range newest {
			names = append(names, o)
		}
		sort.Strings(names)
		for _, o := range names {
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

// LoadVerified loads a session and verifies it from the same reads: each
// object is fetched once.
func (r *Reader) LoadVerified(ctx context.Context, id string, opts VerifyOptions, progress Progress) (*Session, *VerifyResult, error) {
	memo := &Reader{sink: &memoSink{Sink: r.sink, got: map[string][]byte{}}}
	s, err := memo.Load(ctx, id, progress)
	if err != nil {
		return nil, nil, err
	}
	v, err := memo.Verify(ctx, id, opts)
	if err != nil {
		return nil, nil, err
	}
	return s, v, nil
}

// memoSink keeps what it read, for one LoadVerified.
type memoSink struct {
	Sink
	mu  sync.Mutex
	got map[string][]byte
}

func (m *memoSink) Get(ctx context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.got[name]
	m.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := m.Sink.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.got[name] = b
	m.mu.Unlock()
	return b, nil
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

func matches(info *SessionInfo, f Filter) bool {
	s := &info.Summary
	if !f.Since.IsZero() && s.Last.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && s.First.After(f.Until) {
		return false
	}
	if f.Subject != "" && !slices.Contains(s.Subjects, f.Subject) {
		return false
	}
	if f.Actor != "" && !slices.Contains(s.Actors, f.Actor) {
		return false
	}
	if f.Method != "" && !slices.Contains(s.Methods, f.Method) {
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
	// Chunks names the chunk object each event was read from.
	Chunks map[*Event]string
	// Manifests of the segments found (the newest of each).
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
	s := &Session{ID: id, Chunks: map[*Event]string{}}
	var chunks, manifests []string
	for _, objs := range dirs {
		for _, o := range objs {
			if strings.HasSuffix(o, ".jsonl.gz") {
				chunks = append(chunks, o)
			}
		}
		for _, o := range newestManifests(objs) {
			manifests = append(manifests, o)
		}
	}
	sort.Strings(manifests)
	for _, o := range manifests {
		if m, err := r.manifest(ctx, o); err == nil {
			s.Manifests = append(s.Manifests, m)
		} else {
			s.Warnings = append(s.Warnings, err.Error())
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
		for _, e := range evs {
			s.Chunks[e] = path.Base(c)
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

// Prune deletes every day folder whose day ended before cutoff, and the
// checkpoints filed under those days, and returns the number of objects
// deleted. Use the bucket's lifecycle rule for GCS; Prune is meant for
// file:// sinks.
func (r *Reader) Prune(ctx context.Context, cutoff time.Time, progress Progress) (int, error) {
	days, err := r.Days(ctx)
	if err != nil {
		return 0, err
	}
	cpDays, err := r.checkpointDays(ctx)
	if err != nil {
		return 0, err
	}
	var old []string
	for _, d := range days {
		if t, ok := dayTime(d); ok && !t.Add(24*time.Hour).After(cutoff) {
			old = append(old, d+"/")
		}
	}
	for _, d := range cpDays {
		if t, ok := dayTime(d); ok && !t.Add(24*time.Hour).After(cutoff) {
			old = append(old, CheckpointDir+d+"/")
		}
	}
	n := 0
	for i, d := range old {
		if progress != nil {
			progress(i, len(old))
		}
		objs, _, err := r.sink.List(ctx, d, "")
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
