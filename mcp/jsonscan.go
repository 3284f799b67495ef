package mcp

import (
	"bytes"
	"errors"
	"sync"
)

// A small scanner that walks the structure of a JSON message without
// decoding it: it finds member names and the extent of values, so that
// each value can be masked on its own. Values it does not walk are masked
// by the masking package, which validates them.

var errMalformed = errors.New("mcp: malformed JSON in a response message")

func isWSByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWSByte(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] == '"',
// or -1.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// structural marks the bytes that change nesting or start a string.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// valueLen returns the length of the JSON value at the start of b, or -1.
func valueLen(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	switch b[0] {
	case '"':
		return stringEnd(b, 0)
	case '{', '[':
		depth := 0
		for i := 0; i < len(b); i++ {
			c := b[i]
			if !structural[c] {
				continue
			}
			switch c {
			case '"':
				e := stringEnd(b, i)
				if e < 0 {
					return -1
				}
				i = e - 1
			case '{', '[':
				depth++
			default:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	i := 0
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isWSByte(b[i]) {
		i++
	}
	if i == 0 {
		return -1
	}
	return i
}

// members walks the object at b[i]: fn gets each member name (the quoted
// token) and the index of its value, and returns the index after the
// value. members returns the index after the object.
func members(b []byte, i int, fn func(k []byte, j int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errMalformed
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errMalformed
		}
		ke := stringEnd(b, i)
		if ke < 0 {
			return 0, errMalformed
		}
		k := b[i:ke]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, errMalformed
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return 0, errMalformed
		}
		end, err := fn(k, i)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, errMalformed
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, errMalformed
		}
		i = skipWS(b, i+1)
	}
}

// elements walks the array at b[i] as members walks an object.
func elements(b []byte, i int, fn func(j int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return 0, errMalformed
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return 0, errMalformed
		}
		end, err := fn(i)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return 0, errMalformed
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, errMalformed
		}
		i = skipWS(b, i+1)
	}
}

// bufPool holds the scratch buffers of masking: decoded strings, nested
// documents and SSE events, reused across responses.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled bounds the buffers kept in bufPool.
const maxPooled = 16 << 20

// getBuf returns an empty buffer with room for at least n bytes.
func getBuf(n int) *[]byte {
	b := bufPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	*b = (*b)[:0]
	return b
}

func putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooled {
		return
	}
	bufPool.Put(b)
}
