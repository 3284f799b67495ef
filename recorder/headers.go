package recorder

import (
	"bytes"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/airlockhq/airlock/handoff"
)

// header is one recorded header: lower-case name, value as recorded.
type header struct{ name, value string }

// headerMasker masks what the recorder keeps of headers, paths and
// queries. It remembers the values its masker left as they were, so the
// ones most requests repeat (user-agent, accept, the host, the path of a
// poll) go through the masker once rather than once per request. The
// masker must be a function of its input alone, as Options.Mask is.
type headerMasker struct {
	mask  func([]byte) []byte
	clean *cleanSet // nil when mask is
}

func newHeaderMasker(mask func([]byte) []byte) *headerMasker {
	m := &headerMasker{mask: mask}
	if mask != nil {
		m.clean = &cleanSet{seed: maphash.MakeSeed()}
	}
	return m
}

// The names the path and the query are remembered under: no header name
// holds a space.
const (
	pathName  = " path"
	queryName = " query"
)

// maskHeaders returns headers as the recorder keeps them: lower-case
// names, credentials replaced by Masked (handoff.CredentialHeader) and every
// other value passed through the masker when there is one, pseudo-headers
// (":path" ...) kept; a list sorted by name, the order they are written
// in, with no map to build and sort again. Two names that differ only in
// case keep the first value in sorted order. path and query are masked in
// the same pass and returned: an API key travels in a query as often as
// in a header.
func (m *headerMasker) maskHeaders(headers map[string]string, path, query string) (hs []header, maskedPath, maskedQuery string) {
	if len(headers) > 0 {
		hs = make([]header, 0, len(headers))
		for k, v := range headers {
			hs = append(hs, header{strings.ToLower(k), v})
		}
		slices.SortFunc(hs, func(a, b header) int {
			if c := strings.Compare(a.name, b.name); c != 0 {
				return c
			}
			return strings.Compare(a.value, b.value)
		})
		hs = slices.CompactFunc(hs, func(a, b header) bool { return a.name == b.name })
	}
	// What is left to mask: remembered values are neither credentials nor
	// changed by the masker (only such values are remembered).
	var textBuf [24]string
	var whereBuf [24]int // index in hs; -1 the path, -2 the query
	texts, where := textBuf[:0], whereBuf[:0]
	if m.mask != nil {
		if path != "" && !m.clean.has(pathName, path) {
			texts, where = append(texts, path), append(where, -1)
		}
		if query != "" && !m.clean.has(queryName, query) {
			texts, where = append(texts, query), append(where, -2)
		}
	}
	for i := range hs {
		switch h := &hs[i]; {
		case h.name == handoff.RequestIDHeader && handoff.IsUUID(h.value):
			// What Envoy sends on every request (handoff.IsUUID).
		case m.clean.has(h.name, h.value):
		case handoff.CredentialHeader(h.name, h.value):
			h.value = Masked
		case m.mask != nil && h.value != "":
			texts, where = append(texts, h.value), append(where, i)
		}
	}
	maskedPath, maskedQuery = path, query
	if len(texts) == 0 {
		return hs, maskedPath, maskedQuery
	}
	var origBuf [24]string
	orig := append(origBuf[:0], texts...)
	maskTexts(m.mask, texts)
	for j, i := range where {
		name := queryName
		switch {
		case i >= 0:
			name, hs[i].value = hs[i].name, texts[j]
		case i == -1:
			name, maskedPath = pathName, texts[j]
		default:
			maskedQuery = texts[j]
		}
		if texts[j] == orig[j] {
			m.clean.add(name, orig[j])
		}
	}
	return hs, maskedPath, maskedQuery
}

// cleanSet remembers (name, value) pairs the masker left unchanged: a
// fixed table of slots, each holding the last pair admitted to it. A pair
// is admitted the second time it is seen (seen keeps one hash a slot), so
// values that never repeat, as a request ID, cost no allocation and evict
// nothing. Values longer than maxCleanLen are not remembered: the table
// stays under about 1.5 MiB.
type cleanSet struct {
	seed  maphash.Seed
	seen  [cleanSlots]atomic.Uint64
	slots [cleanSlots]atomic.Pointer[cleanEntry]
}

type cleanEntry struct {
	hash        uint64
	name, value string
}

const (
	cleanSlots  = 4096 // a power of two
	maxCleanLen = 256
)

// hash hashes value, and tells names apart by their length and last byte
// alone (the entry holds the whole name): two headers of a request that
// carry the same value seldom take the same slot.
func (c *cleanSet) hash(name, value string) uint64 {
	var tag uint64
	if name != "" {
		tag = uint64(len(name))<<8 | uint64(name[len(name)-1])
	}
	return maphash.String(c.seed, value) ^ tag*0x9e3779b97f4a7c15
}

// has reports whether name: value was remembered; false on a nil set.
func (c *cleanSet) has(name, value string) bool {
	if c == nil || len(value) > maxCleanLen {
		return false
	}
	h := c.hash(name, value)
	e := c.slots[h&(cleanSlots-1)].Load()
	return e != nil && e.hash == h && e.value == value && e.name == name
}

// add notes name: value, and remembers it if it was seen before.
func (c *cleanSet) add(name, value string) {
	if c == nil || len(value) > maxCleanLen {
		return
	}
	h := c.hash(name, value)
	i := h & (cleanSlots - 1)
	if c.seen[i].Swap(h) != h {
		return
	}
	c.slots[i].Store(&cleanEntry{hash: h, name: strings.Clone(name), value: strings.Clone(value)})
}

// maskTexts replaces each text with its masked form, in one pass of mask
// over all of them joined by line breaks rather than one pass each. A
// text mask left alone is not copied. Texts holding a line break
// themselves, or a pass that does not give back as many lines as it was
// given (a match across a line break), are masked one by one. The masked
// lines are compared with the texts, not with the joined input, so a
// masker that rewrites its input in place is handled too.
func maskTexts(mask func([]byte) []byte, texts []string) {
	n := len(texts) - 1
	for _, t := range texts {
		if strings.IndexByte(t, '\n') >= 0 || strings.IndexByte(t, '\r') >= 0 {
			maskEach(mask, texts)
			return
		}
		n += len(t)
	}
	bp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(bp)
	joined := slices.Grow((*bp)[:0], n)
	for i, t := range texts {
		if i > 0 {
			joined = append(joined, '\n')
		}
		joined = append(joined, t...)
	}
	if cap(joined) <= maxScratch {
		*bp = joined
	}
	masked := mask(joined)
	if bytes.Count(masked, []byte{'\n'}) != len(texts)-1 {
		maskEach(mask, texts)
		return
	}
	for i, t := range texts {
		line, rest, _ := bytes.Cut(masked, []byte{'\n'})
		if string(line) != t {
			texts[i] = string(line)
		}
		masked = rest
	}
}

func maskEach(mask func([]byte) []byte, texts []string) {
	for i, t := range texts {
		if t != "" {
			texts[i] = string(mask([]byte(t)))
		}
	}
}

// scratchPool holds the buffers maskTexts joins texts in.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxScratch bounds the buffers kept in scratchPool.
const maxScratch = 64 << 10
