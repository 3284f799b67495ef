// Package masking finds and masks secrets and personal data in response
// bodies as they stream through the gateway.
//
// Two kinds of rule apply: field rules select JSON values by path
// (`payload.data`, `**.privateKeyData`,
// `metadata.items[?key=="startup-script"].value`) and replace the whole value;
// detectors find secrets in any text (API keys, tokens, private keys, card
// numbers, ...) and replace the match. A masked value keeps JSON valid:
// `"[MASKED:private_key]"`. Bodies are processed in chunks with bounded memory:
// a JSON body is read by a streaming tokenizer and a text body by a scanner
// that carries over a tail as long as the longest possible match, so a secret
// split across chunks is still found. TextMasker masks short texts whole
// (header values) and serialized protocol buffer messages (gRPC), where
// detectors apply.
package masking

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// DetectorSpec declares a custom detector (from a policy file).
type DetectorSpec struct {
	// Name is how policies refer to it: lower case letters, digits and '_'.
	Name string
	// Regex is a Go regular expression (RE2 syntax). When it has a capture
	// group, only the first group is masked.
	Regex string
	// Keywords trigger the detector: the regex runs only near a keyword
	// (case-insensitive). Without keywords it runs on every text.
	Keywords []string
	// Entropy is the minimum Shannon entropy (bits per byte) of the masked
	// text; 0 disables the check.
	Entropy float64
	// MaxLen bounds the length of a match in bytes; 0 means 1024.
	MaxLen int
}

// Field is a field rule: the JSON values at Path are masked as
// "[MASKED:Label]".
type Field struct {
	Path  string
	Label string
}

// Profile is what one response is masked with: field rules and detector
// names (or the groups "credentials", "personal", "all").
type Profile struct {
	Fields    []Field
	Detectors []string
}

// DefaultProfile masks credentials in every response: every credential
// detector, secret-named JSON members (passwords, private keys, tokens) and
// the top-level "secret" of a created HMAC key. Personal data is left alone
// unless a policy asks for it.
func DefaultProfile() Profile {
	return Profile{
		Fields:    []Field{{Path: "secret", Label: "hmac_secret"}},
		Detectors: []string{GroupCredentials},
	}
}

// Merge returns p with the rules of o added (duplicates removed).
func (p Profile) Merge(o Profile) Profile {
	out := Profile{}
	seenF := map[Field]bool{}
	for _, f := range append(append([]Field{}, p.Fields...), o.Fields...) {
		if !seenF[f] {
			seenF[f] = true
			out.Fields = append(out.Fields, f)
		}
	}
	seenD := map[string]bool{}
	for _, d := range append(append([]string{}, p.Detectors...), o.Detectors...) {
		if !seenD[d] {
			seenD[d] = true
			out.Detectors = append(out.Detectors, d)
		}
	}
	return out
}

func (p Profile) key() string {
	var b strings.Builder
	for _, f := range p.Fields {
		b.WriteString(f.Path)
		b.WriteByte(0)
		b.WriteString(f.Label)
		b.WriteByte(1)
	}
	b.WriteByte(2)
	for _, d := range p.Detectors {
		b.WriteString(d)
		b.WriteByte(0)
	}
	return b.String()
}

// ErrInvalidJSON is returned (wrapped) when a body declared as JSON is not.
var ErrInvalidJSON = errors.New("masking: invalid JSON")

// ErrUnmaskable is returned (wrapped) when a value cannot be masked within
// the memory bounds; the stream must be abandoned.
var ErrUnmaskable = errors.New("masking: value cannot be masked")

type kwRef struct {
	det int32
	n   int
}

// Engine holds the compiled detectors. It is immutable and safe for
// concurrent use; build a new one when custom detectors change.
type Engine struct {
	dets     []*detector
	byName   map[string]int32
	keywords []kwRef
	ac       *acMatcher
	mu       sync.Mutex
	profiles map[string]*compiledProfile
}

var builtinNames = func() []string {
	var out []string
	for _, d := range builtinDetectors() {
		if d.partOf == "" {
			out = append(out, d.name)
		}
	}
	out = append(out, secretFieldName)
	sort.Strings(out)
	return out
}()

// secretFieldName is the built-in detector that masks JSON members whose
// name says they hold a secret (password, privateKeyData, accessToken, ...).
const secretFieldName = "secret_field"

// BuiltinNames lists the names of the built-in detectors.
func BuiltinNames() []string { return append([]string(nil), builtinNames...) }

// IsBuiltin reports whether name is a built-in detector or a detector group.
func IsBuiltin(name string) bool {
	switch name {
	case GroupAll, GroupCredentials, GroupPersonal:
		return true
	}
	i := sort.SearchStrings(builtinNames, name)
	return i < len(builtinNames) && builtinNames[i] == name
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// NewEngine compiles the built-in detectors and the custom ones.
func NewEngine(custom []DetectorSpec) (*Engine, error) {
	e := &Engine{byName: map[string]int32{}, profiles: map[string]*compiledProfile{}}
	e.dets = builtinDetectors()
	for _, c := range custom {
		if !nameRE.MatchString(c.Name) {
			return nil, fmt.Errorf("masking: detector %q: name must be lower case letters, digits and _", c.Name)
		}
		if IsBuiltin(c.Name) {
			return nil, fmt.Errorf("masking: detector %q: name is taken by a built-in detector", c.Name)
		}
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return nil, fmt.Errorf("masking: detector %q: regex: %w", c.Name, err)
		}
		if c.Regex == "" || re.MatchString("") {
			return nil, fmt.Errorf("masking: detector %q: regex matches the empty string", c.Name)
		}
		if c.Entropy < 0 || c.Entropy > 8 {
			return nil, fmt.Errorf("masking: detector %q: entropy must be between 0 and 8 bits per byte", c.Name)
		}
		maxLen := c.MaxLen
		if maxLen <= 0 {
			maxLen = 1024
		}
		if maxLen > 16<<10 {
			return nil, fmt.Errorf("masking: detector %q: max length above 16 KiB", c.Name)
		}
		d := &detector{name: c.Name, re: re, entropy: c.Entropy, maxLen: maxLen, back: maxLen, custom: true}
		if re.NumSubexp() > 0 {
			d.group = 1
		}
		for _, k := range c.Keywords {
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "" {
				return nil, fmt.Errorf("masking: detector %q: empty keyword", c.Name)
			}
			d.keywords = append(d.keywords, k)
		}
		e.dets = append(e.dets, d)
	}
	var kws []string
	for i, d := range e.dets {
		if _, dup := e.byName[d.name]; dup {
			return nil, fmt.Errorf("masking: detector %q declared twice", d.name)
		}
		e.byName[d.name] = int32(i)
		d.label = label(d.name)
		if d.partOf != "" {
			d.label = label(d.partOf)
		}
		for _, k := range d.keywords {
			kws = append(kws, k)
			e.keywords = append(e.keywords, kwRef{det: int32(i), n: len(k)})
		}
	}
	e.ac = newACMatcher(kws)
	return e, nil
}

// Detectors lists every detector name the engine knows, custom ones included.
func (e *Engine) Detectors() []string {
	out := []string{secretFieldName}
	for _, d := range e.dets {
		if d.partOf == "" {
			out = append(out, d.name)
		}
	}
	sort.Strings(out)
	return out
}

// label returns the replacement text of a masked value or span.
func label(name string) []byte {
	b := []byte("[MASKED:")
	for i := 0; i < len(name) && i < 64; i++ {
		c := name[i]
		if isAlnum(c) || c == '_' || c == '-' || c == '.' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return append(b, ']')
}

// compiledProfile is a Profile compiled against an Engine.
type compiledProfile struct {
	set       *detSet
	fields    []*fieldPath
	predNames []string
	labels    [][]byte // per detector
	// keyLens is the set (lenBit) of the lengths of the member names
	// in field rules; lastKeyLens that of the last segments, and lastKeys
	// is set when every field rule ends with a member name.
	keyLens     uint64
	lastKeyLens uint64
	lastKeys    bool
}

const maxCachedProfiles = 1024

func (e *Engine) compile(p Profile) (*compiledProfile, error) {
	k := p.key()
	e.mu.Lock()
	cp := e.profiles[k]
	e.mu.Unlock()
	if cp != nil {
		return cp, nil
	}
	set := &detSet{e: e, enabled: make([]bool, len(e.dets))}
	for _, name := range p.Detectors {
		switch name {
		case GroupAll, GroupCredentials, GroupPersonal:
			for i, d := range e.dets {
				if name == GroupAll || name == GroupCredentials && d.class == Credential || name == GroupPersonal && d.class == Personal {
					set.enabled[i] = true
				}
			}
			if name != GroupPersonal {
				set.secretFields = true
			}
			continue
		case secretFieldName:
			set.secretFields = true
			continue
		}
		i, ok := e.byName[name]
		if !ok || e.dets[i].partOf != "" {
			return nil, fmt.Errorf("masking: unknown detector %q", name)
		}
		set.enabled[i] = true
	}
	for i, d := range e.dets {
		if d.partOf != "" && set.enabled[e.byName[d.partOf]] {
			set.enabled[i] = true
		}
	}
	for i, on := range set.enabled {
		if !on {
			continue
		}
		set.any = true
		d := e.dets[i]
		set.custom = set.custom || d.custom
		if len(d.keywords) == 0 {
			set.full = append(set.full, int32(i))
		}
		if d.maxLen+d.back > set.carry {
			set.carry = d.maxLen + d.back
		}
	}
	cp = &compiledProfile{set: set, lastKeys: len(p.Fields) > 0}
	seen := map[string]bool{}
	for _, f := range p.Fields {
		fp, err := parseFieldPath(f.Path)
		if err != nil {
			return nil, err
		}
		lb := f.Label
		if lb == "" {
			lb = "field"
		}
		fp.label = label(lb)
		cp.fields = append(cp.fields, fp)
		if fp.lastIsKey {
			cp.lastKeyLens |= lenBit(len(fp.lastKey))
		} else {
			cp.lastKeys = false
		}
		for _, s := range fp.segs {
			if s.kind == segKey {
				cp.keyLens |= lenBit(len(s.key))
			}
			if s.kind == segFilter && !seen[s.fname] {
				seen[s.fname] = true
				cp.predNames = append(cp.predNames, s.fname)
			}
		}
	}
	e.mu.Lock()
	if len(e.profiles) < maxCachedProfiles {
		e.profiles[k] = cp
	}
	e.mu.Unlock()
	return cp, nil
}

// Check compiles p and reports the first problem (unknown detector, bad path).
func (e *Engine) Check(p Profile) error {
	_, err := e.compile(p)
	return err
}

// Kind says how a body is read.
type Kind int

const (
	// Text bodies are scanned by detectors as a byte stream.
	Text Kind = iota + 1
	// JSON bodies are tokenized: field rules apply, detectors scan strings.
	JSON
)

// Stream masks one body. It is not safe for concurrent use.
type Stream struct {
	json *jsonMasker
	text *textMasker
	// u16 masks a text found to be UTF-16; sniff holds a text's first bytes
	// until it is known whether it is.
	u16     *utf16Masker
	sniff   []byte
	sniffed bool
	err     error
	in      int64
}

// NewStream starts masking one body of the given kind with profile p.
func (e *Engine) NewStream(p Profile, kind Kind) (*Stream, error) {
	cp, err := e.compile(p)
	if err != nil {
		return nil, err
	}
	sc := newScanner(cp.set)
	s := &Stream{}
	if kind == JSON {
		s.json = newJSONMasker(cp, sc)
	} else {
		s.text = newTextMasker(sc)
	}
	return s, nil
}

// Write masks p and appends what can be emitted to dst. After an error the
// stream is dead: nothing more must be sent downstream.
func (s *Stream) Write(dst, p []byte) ([]byte, error) {
	if s.err != nil {
		return dst, s.err
	}
	s.in += int64(len(p))
	if s.text != nil {
		return s.writeText(dst, p, false)
	}
	out, err := s.json.write(dst, p)
	if err != nil {
		s.err = err
		return dst, err
	}
	return out, nil
}

// Close ends the body and appends the rest of the output to dst. A JSON
// body that ends inside a value is an error.
func (s *Stream) Close(dst []byte) ([]byte, error) {
	if s.err != nil {
		return dst, s.err
	}
	if s.text != nil {
		return s.writeText(dst, nil, true)
	}
	out, err := s.json.close(dst)
	if err != nil {
		s.err = err
		return dst, err
	}
	return out, nil
}

// writeText masks text, UTF-16 text through its UTF-8 reading.
func (s *Stream) writeText(dst, p []byte, final bool) ([]byte, error) {
	if !s.sniffed {
		s.sniff = append(s.sniff, p...)
		is16, be, decided := detectUTF16(s.sniff, final)
		if !decided {
			return dst, nil
		}
		s.sniffed = true
		if is16 {
			s.u16 = &utf16Masker{inner: s.text, be: be}
		}
		p, s.sniff = s.sniff, nil
	}
	var out []byte
	if s.u16 != nil {
		out = s.u16.write(dst, p, final)
	} else {
		out = s.text.write(dst, p, final, emitRaw)
	}
	if err := s.text.err; err != nil {
		s.err = err
		return dst, err
	}
	return out, nil
}

// Masked returns how many values or spans have been masked so far.
func (s *Stream) Masked() int {
	if s.text != nil {
		return s.text.masked
	}
	if s.json != nil {
		n := s.json.masked
		if s.json.lt != nil {
			n += s.json.lt.masked
		}
		return n
	}
	return 0
}

// Mask masks a whole body at once.
func (e *Engine) Mask(p Profile, kind Kind, body []byte) ([]byte, error) {
	s, err := e.NewStream(p, kind)
	if err != nil {
		return nil, err
	}
	out, err := s.Write(make([]byte, 0, len(body)+len(body)/8), body)
	if err != nil {
		return nil, err
	}
	return s.Close(out)
}
