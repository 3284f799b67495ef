package masking

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Caches: strings already seen clean, and the byte classes the hot loop
// stops at.

// lookupClean looks ce up in the clean-value cache (two-way sets, the least
// recently used entry replaced): a hit, or the slot to fill once the value
// is found clean, and its set.
func (j *jsonMasker) lookupClean(ce cleanEntry) (hit bool, slot *cleanEntry, set uint64) {
	set = ce.h % uint64(len(j.clean))
	w := &j.clean[set]
	switch ce {
	case w[0]:
		j.cleanMRU[set] = 0
		return true, nil, set
	case w[1]:
		j.cleanMRU[set] = 1
		return true, nil, set
	}
	return false, &w[1-j.cleanMRU[set]], set
}

var hexDigits = "0123456789abcdef"

// emitJSONString appends b escaped for the inside of a JSON string.
func emitJSONString(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, b[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(dst, b[start:]...)
}

// stopMask flags the bytes of x (eight bytes read little-endian) that are
// '"' or '\\': a byte of q or s is zero where x holds one. Only the lowest
// flagged byte is certain (a borrow may flag bytes above a true one), which
// is all strStop reads.
func stopMask(x uint64) uint64 {
	q := x ^ (swarLo * '"')
	s := x ^ (swarLo * '\\')
	return ((q-swarLo)&^q | (s-swarLo)&^s) & swarHi
}

// Bytes of 0x01 and 0x80 repeated, for scanning eight bytes at a time.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// strStop returns the offset of the first '"' or '\\' in b, or len(b).
// Short strings are scanned eight bytes at a time; the rest of a long one
// is left to bytes.IndexByte.
func strStop(b []byte) int {
	i := 0
	if len(b) >= 16 {
		// The first sixteen bytes hold most keys and short values: find
		// the stop in them without a branch on where it is.
		m0 := stopMask(binary.LittleEndian.Uint64(b))
		m1 := stopMask(binary.LittleEndian.Uint64(b[8:]))
		if m0|m1 != 0 {
			t := bits.TrailingZeros64(m0) >> 3 // 8 when m0 is 0
			return t + (bits.TrailingZeros64(m1)>>3)&-(t>>3)
		}
		i = 16
	}
	for ; i+8 <= len(b) && i < 64; i += 8 {
		if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i+8 > len(b) {
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' {
				return i
			}
		}
		return i
	}
	k := len(b)
	if q := bytes.IndexByte(b[i:], '"'); q >= 0 {
		k = i + q
	}
	if e := bytes.IndexByte(b[i:k], '\\'); e >= 0 {
		k = i + e
	}
	return k
}
