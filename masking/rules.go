package masking

import "bytes"

// Rule is a masking rule a decision selected (a policy's `masking:` entry
// whose `when` held), self-contained so that any replica can apply it:
// Fields are masked whatever they hold, under the label Name; Detectors
// are added to the default profile's.
type Rule struct {
	Policy    string
	Name      string
	Fields    []string
	Detectors []string
}

// ProfileFor is the profile of a request: the default profile with the
// rules its decision selected merged in.
func ProfileFor(rules []Rule) Profile {
	p := DefaultProfile()
	for _, r := range rules {
		extra := Profile{Detectors: r.Detectors}
		for _, f := range r.Fields {
			extra.Fields = append(extra.Fields, Field{Path: f, Label: r.Name})
		}
		p = p.Merge(extra)
	}
	return p
}

// Withheld is what is kept of a request body that cannot be masked.
const Withheld = "[MASKED]"

// RequestMasker masks what approvers and recordings see of requests: with
// the request's profile (its field rules apply to request bodies too:
// secretmanager addVersion carries payload.data), and never fails open.
type RequestMasker struct {
	e       *Engine
	def     Profile
	text    *TextMasker
	textErr error
}

// NewRequestMasker returns a RequestMasker over e.
func NewRequestMasker(e *Engine) *RequestMasker {
	m := &RequestMasker{e: e, def: ProfileFor(nil)}
	m.text, m.textErr = e.TextMasker(m.def)
	return m
}

// Body masks a request body with the default profile and rules: as JSON
// when it looks like JSON (falling back to text), else as text. A body
// that cannot be masked is withheld.
func (m *RequestMasker) Body(b []byte, rules []Rule) []byte {
	if len(b) == 0 {
		return b
	}
	p := m.def
	if len(rules) > 0 {
		p = ProfileFor(rules)
	}
	kind := Text
	if looksJSON(b) {
		kind = JSON
	}
	out, err := m.e.Mask(p, kind, b)
	if err != nil && kind == JSON {
		out, err = m.e.Mask(p, Text, b)
	}
	if err != nil {
		return []byte(Withheld)
	}
	return out
}

// Value masks a header value, a path or a body with the default profile;
// text goes through in one pass.
func (m *RequestMasker) Value(b []byte) []byte {
	if len(b) == 0 || looksJSON(b) {
		return m.Body(b, nil)
	}
	if m.textErr != nil {
		return []byte(Withheld)
	}
	out, _ := m.text.Mask(make([]byte, 0, len(b)+64), b)
	return out
}

// looksJSON says whether a body is read as JSON: it starts with { or [.
func looksJSON(b []byte) bool {
	t := bytes.TrimLeft(b[:min(len(b), 64)], " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}
