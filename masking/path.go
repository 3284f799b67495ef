package masking

import (
	"fmt"
	"strings"
)

type segKind uint8

const (
	segKey    segKind = iota + 1 // a member name
	segAny                       // * : any one member
	segDeep                      // ** : any number of members and elements
	segElem                      // [] or [*] : any array element
	segFilter                    // [?name=="value"] : an element whose member name equals value
)

type seg struct {
	kind  segKind
	key   string
	fname string
	fval  string
}

// fieldPath is a compiled field rule path.
//
// Grammar: segments separated by dots; a segment is a member name, `*` (any
// one member), `**` (any depth), and may end in brackets: `[]` or `[*]` (any
// element), `[?name=="value"]` (an element object whose member name equals
// value; the member must appear before the masked member, otherwise the
// masked member is masked whatever the element holds). Arrays are
// transparent: `a.b` also reaches `{"a":[{"b":...}]}`. A path starts at the
// top-level value; start it with `**.` to match at any depth.
type fieldPath struct {
	segs []seg
	// lastIsKey and lastKey copy the last segment when it is a member
	// name: most values are ruled out by it alone.
	lastIsKey bool
	lastKey   string
	label     []byte
	src       string
}

func parseFieldPath(src string) (*fieldPath, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("masking: field path is empty")
	}
	fp := &fieldPath{src: src}
	rest := src
	for len(rest) > 0 {
		// Read one dotted segment, brackets included.
		i := 0
		depth := 0
		inQuote := byte(0)
		for i < len(rest) {
			c := rest[i]
			if inQuote != 0 {
				if c == inQuote {
					inQuote = 0
				}
			} else if c == '"' || c == '\'' {
				inQuote = c
			} else if c == '[' {
				depth++
			} else if c == ']' {
				depth--
			} else if c == '.' && depth == 0 {
				break
			}
			i++
		}
		part := rest[:i]
		if i < len(rest) {
			rest = rest[i+1:]
			if rest == "" {
				return nil, fmt.Errorf("masking: field path %q ends with a dot", src)
			}
		} else {
			rest = ""
		}
		name := part
		br := ""
		if k := strings.IndexByte(part, '['); k >= 0 {
			name, br = part[:k], part[k:]
		}
		switch name {
		case "":
			if br == "" {
				return nil, fmt.Errorf("masking: field path %q has an empty segment", src)
			}
		case "**":
			fp.segs = append(fp.segs, seg{kind: segDeep})
		case "*":
			fp.segs = append(fp.segs, seg{kind: segAny})
		default:
			if strings.ContainsAny(name, `*"'?=]`) {
				return nil, fmt.Errorf("masking: field path %q: bad member name %q", src, name)
			}
			fp.segs = append(fp.segs, seg{kind: segKey, key: name})
		}
		for br != "" {
			end := strings.IndexByte(br, ']')
			if br[0] != '[' || end < 0 {
				return nil, fmt.Errorf("masking: field path %q: unbalanced brackets", src)
			}
			inner := br[1:end]
			// A quoted value may contain ']': find the real end.
			if strings.HasPrefix(inner, "?") {
				q := strings.IndexAny(inner, `"'`)
				if q >= 0 {
					closeQ := strings.IndexByte(br[1+q+1:], inner[q])
					if closeQ < 0 {
						return nil, fmt.Errorf("masking: field path %q: unterminated quote", src)
					}
					end = 1 + q + 1 + closeQ + 1
					if end >= len(br) || br[end] != ']' {
						return nil, fmt.Errorf("masking: field path %q: filter must be ?name==\"value\"", src)
					}
					inner = br[1:end]
				}
			}
			br = br[end+1:]
			switch {
			case inner == "" || inner == "*":
				fp.segs = append(fp.segs, seg{kind: segElem})
			case strings.HasPrefix(inner, "?"):
				cond := inner[1:]
				eq := strings.Index(cond, "==")
				if eq <= 0 {
					return nil, fmt.Errorf("masking: field path %q: filter must be ?name==\"value\"", src)
				}
				fname := strings.TrimSpace(cond[:eq])
				fval := strings.TrimSpace(cond[eq+2:])
				if len(fval) < 2 || (fval[0] != '"' && fval[0] != '\'') || fval[len(fval)-1] != fval[0] {
					return nil, fmt.Errorf("masking: field path %q: filter value must be quoted", src)
				}
				fp.segs = append(fp.segs, seg{kind: segFilter, fname: fname, fval: fval[1 : len(fval)-1]})
			default:
				return nil, fmt.Errorf("masking: field path %q: unsupported bracket [%s]", src, inner)
			}
		}
	}
	last := fp.segs[len(fp.segs)-1]
	if last.kind == segFilter || last.kind == segDeep {
		return nil, fmt.Errorf("masking: field path %q must end with a member name, * or []", src)
	}
	fp.lastIsKey, fp.lastKey = last.kind == segKey, last.key
	return fp, nil
}

// match reports whether the value about to start under stack is selected.
func (fp *fieldPath) match(stack []frame) bool {
	if fp.lastIsKey {
		if len(stack) == 0 {
			return false
		}
		top := &stack[len(stack)-1]
		if !top.obj || top.keyUnmatched || string(top.key) != fp.lastKey {
			return false
		}
	}
	return fp.m(stack, 0, 0)
}

func (fp *fieldPath) m(stack []frame, pi, si int) bool {
	if pi == len(fp.segs) {
		return si == len(stack)
	}
	s := &fp.segs[pi]
	if s.kind == segDeep {
		if fp.m(stack, pi+1, si) {
			return true
		}
		return si < len(stack) && fp.m(stack, pi, si+1)
	}
	if si == len(stack) {
		return false
	}
	f := &stack[si]
	switch s.kind {
	case segKey:
		if !f.obj {
			return fp.m(stack, pi, si+1)
		}
		return !f.keyUnmatched && string(f.key) == s.key && fp.m(stack, pi+1, si+1)
	case segAny:
		if !f.obj {
			return fp.m(stack, pi, si+1)
		}
		return fp.m(stack, pi+1, si+1)
	case segElem:
		return !f.obj && fp.m(stack, pi+1, si+1)
	case segFilter:
		if f.obj || si+1 >= len(stack) || !stack[si+1].obj {
			return false
		}
		if v, ok := stack[si+1].pred(s.fname); ok && string(v) != s.fval {
			return false
		}
		return fp.m(stack, pi+1, si+1)
	}
	return false
}

// CheckFieldPath reports whether path is a valid field rule path, so that a
// policy loader can refuse a bad path at load time.
func CheckFieldPath(path string) error {
	_, err := parseFieldPath(path)
	return err
}
