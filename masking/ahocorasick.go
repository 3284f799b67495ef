package masking

import "encoding/binary"

// acMatcher is an Aho-Corasick automaton over lower-cased keywords. One
// linear pass over a text reports every keyword occurrence, overlapping ones
// included, so the cost of the prefilter does not grow with the number of
// detectors.
type acMatcher struct {
	// class maps an input byte (already lower-cased) to its byte class;
	// class 0 is "a byte that appears in no keyword".
	class [256]uint8
	// nclass is the number of byte classes.
	nclass int
	// next is the dense transition table indexed by state offset
	// (state*nclass) plus class; entries are target state offsets, negated
	// (minus one) when the target state reports keywords.
	next []int32
	// next16 is next in 16 bits when it fits, to stay in the L1 cache.
	next16 []int16
	// out lists, per state, the keyword ids that end there (failure chain merged).
	out [][]int32
	// start marks bytes that leave the root state.
	start [256]bool
	// pair is a bitset over two-byte sequences that can begin a keyword
	// (any case), indexed by the two bytes read little-endian (first byte
	// low); single-byte keywords admit every following byte.
	pair pairSet
}

// pairSet is a set of two-byte sequences, indexed by the two bytes read
// little-endian.
type pairSet [1 << 10]uint64

// has reports whether the sequence k is in the set.
func (p *pairSet) has(k uint16) bool { return p[k>>6]&(1<<(k&63)) != 0 }

// skip returns the first position from i where the two bytes of text are
// in the set, else len(text)-1 (i when i >= len(text)-1).
func (p *pairSet) skip(text []byte, i int) int {
	// Seven positions from one eight-byte load.
	for i+8 <= len(text) {
		w := binary.LittleEndian.Uint64(text[i:])
		switch {
		case p.has(uint16(w)):
			return i
		case p.has(uint16(w >> 8)):
			return i + 1
		case p.has(uint16(w >> 16)):
			return i + 2
		case p.has(uint16(w >> 24)):
			return i + 3
		case p.has(uint16(w >> 32)):
			return i + 4
		case p.has(uint16(w >> 40)):
			return i + 5
		case p.has(uint16(w >> 48)):
			return i + 6
		}
		i += 7
	}
	for i+1 < len(text) && !p.has(uint16(text[i])|uint16(text[i+1])<<8) {
		i++
	}
	return i
}

func (m *acMatcher) setPair(a, b byte) {
	for _, x := range caseVariants(a) {
		for _, y := range caseVariants(b) {
			k := uint16(x) | uint16(y)<<8
			m.pair[k>>6] |= 1 << (k & 63)
		}
	}
}

func caseVariants(c byte) []byte {
	l := lowerTable[c]
	if l >= 'a' && l <= 'z' {
		return []byte{l, l - ('a' - 'A')}
	}
	return []byte{c}
}

// lowerTable lower-cases ASCII letters and keeps every other byte.
var lowerTable = func() (t [256]byte) {
	for i := range t {
		b := byte(i)
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		t[i] = b
	}
	return t
}()

// newACMatcher builds the automaton; keyword i is reported as id i.
func newACMatcher(keywords []string) *acMatcher {
	m := &acMatcher{}
	n := 1
	for _, k := range keywords {
		for i := 0; i < len(k); i++ {
			c := lowerTable[k[i]]
			if m.class[c] == 0 {
				m.class[c] = uint8(n)
				n++
			}
		}
	}
	// Upper-case input bytes map to the class of their lower-case form.
	for b := 'A'; b <= 'Z'; b++ {
		m.class[b] = m.class[b+('a'-'A')]
	}
	m.nclass = n
	// Trie with -1 for missing edges.
	trie := [][]int32{make([]int32, n)}
	for i := range trie[0] {
		trie[0][i] = -1
	}
	outs := [][]int32{nil}
	for id, k := range keywords {
		s := 0
		for i := 0; i < len(k); i++ {
			c := m.class[lowerTable[k[i]]]
			if trie[s][c] < 0 {
				row := make([]int32, n)
				for j := range row {
					row[j] = -1
				}
				trie = append(trie, row)
				outs = append(outs, nil)
				trie[s][c] = int32(len(trie) - 1)
			}
			s = int(trie[s][c])
		}
		outs[s] = append(outs[s], int32(id))
	}
	fail := make([]int32, len(trie))
	queue := make([]int32, 0, len(trie))
	for c := 0; c < n; c++ {
		if t := trie[0][c]; t >= 0 {
			fail[t] = 0
			queue = append(queue, t)
		} else {
			trie[0][c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		outs[s] = append(outs[s], outs[fail[s]]...)
		for c := 0; c < n; c++ {
			t := trie[s][c]
			if t >= 0 {
				fail[t] = trie[fail[s]][c]
				queue = append(queue, t)
			} else {
				trie[s][c] = trie[fail[s]][c]
			}
		}
	}
	m.next = make([]int32, len(trie)*n)
	for s, row := range trie {
		for c, t := range row {
			v := t * int32(n)
			if len(outs[t]) > 0 {
				v = -v - 1
			}
			m.next[s*n+c] = v
		}
	}
	m.out = outs
	if len(m.next) < 1<<15 {
		m.next16 = make([]int16, len(m.next))
		for i, v := range m.next {
			m.next16[i] = int16(v)
		}
	}
	for b := 0; b < 256; b++ {
		c := m.class[b]
		m.start[b] = c != 0 && trie[0][c] != 0
	}
	for _, k := range keywords {
		if len(k) == 1 {
			for b := 0; b < 256; b++ {
				m.setPair(k[0], byte(b))
			}
			continue
		}
		m.setPair(k[0], k[1])
	}
	return m
}

// scan calls hit(id, end) for every keyword occurrence in text, where end is
// the offset just past the keyword.
func (m *acMatcher) scan(text []byte, hit func(id int32, end int)) {
	if len(m.next) == 0 {
		return
	}
	n := int32(m.nclass)
	if m.next16 != nil {
		m.scan16(text, hit)
		return
	}
	next := m.next
	class := &m.class
	start := &m.start
	off := int32(0)
	for i := 0; i < len(text); i++ {
		if off == 0 {
			// Fast skip over bytes that cannot start a keyword.
			for i < len(text) && !start[text[i]] {
				i++
			}
			if i == len(text) {
				return
			}
		}
		v := next[off+int32(class[text[i]])]
		if v < 0 {
			off = -v - 1
			for _, id := range m.out[off/n] {
				hit(id, i+1)
			}
			continue
		}
		off = v
	}
}

// scan16 is scan over the 16-bit table.
func (m *acMatcher) scan16(text []byte, hit func(id int32, end int)) {
	n := int16(m.nclass)
	next := m.next16
	class := &m.class
	start := &m.start
	pair := &m.pair
	off := int16(0)
	for i := 0; i < len(text); i++ {
		if off == 0 {
			// Skip positions whose two bytes cannot begin a keyword.
			i = pair.skip(text, i)
			if i+1 >= len(text) && (i >= len(text) || !start[text[i]]) {
				return
			}
		}
		v := next[int(off)+int(class[text[i]])]
		if v < 0 {
			off = -v - 1
			for _, id := range m.out[off/n] {
				hit(id, i+1)
			}
			continue
		}
		off = v
	}
}
