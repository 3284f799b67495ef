package masking

import (
	"fmt"
	"hash/maphash"
)

const (
	// maxShortString is the longest string value held whole; longer ones
	// stream through a textMasker and are re-encoded.
	maxShortString = 16 << 10
	// maxKeyLen is the longest object key accepted.
	maxKeyLen = 4 << 10
	// maxPathKey is how much of a key is kept for path matching.
	maxPathKey = 256
	// maxPredValue is how much of a filter member's value is kept.
	maxPredValue = 256
	// maxDepth bounds nesting.
	maxDepth = 512
	// minBase64 is the shortest string value decoded as base64 for scanning.
	minBase64 = 24
	// longPiece is how much of a long string is decoded before it is
	// handed to the scanner.
	longPiece = 4 << 10
)

// cleanEntry identifies a string value already scanned clean: the keyed
// hash and the length of its decoded bytes, or of its raw bytes (with
// escapes) when n is negative.
type cleanEntry struct {
	h uint64
	n int
}

// minCached is the shortest value remembered as clean by its hash;
// shorter values up to shortCached bytes are remembered whole.
const (
	minCached   = shortCached + 1
	shortCached = 16
	shortBits   = 7
)

// shortEntry holds a short value found clean: its first and its last
// eight bytes (overlapping, read little-endian) and its length, which
// together are the whole value.
type shortEntry struct {
	a, b uint64
	n    uint8
}

// cleanSeed keys the hash of clean values; it is random per process, so
// nobody can craft a value that collides with a clean one.
var cleanSeed = maphash.MakeSeed()

type predVal struct {
	name string
	val  []byte
}

// frame is one open container on the tokenizer stack.
type frame struct {
	obj bool
	key []byte
	// keyUnmatched is set when no field rule can match the member name:
	// it is longer than maxPathKey, or no rule names a member of its
	// length. key is then left empty.
	keyUnmatched bool
	// secretKey is the label of the secret_field rule when the current
	// member's name says it holds a secret.
	secretKey []byte
	// bytesKey is set when the member names bytes (isBytesMember).
	bytesKey bool
	// capture names the filter member whose value comes next ("" if none).
	capture string
	preds   []predVal
}

func (f *frame) pred(name string) ([]byte, bool) {
	for i := range f.preds {
		if f.preds[i].name == name {
			return f.preds[i].val, true
		}
	}
	return nil, false
}

// jsonMasker is a streaming JSON tokenizer that masks while it validates.
type jsonMasker struct {
	cp *compiledProfile
	sc *scanner
	// Copied from cp, read for every value.
	secretFields bool
	lastKeys     bool
	lastKeyLens  uint64
	lt           *textMasker
	lb           b64Stream

	st    jstate
	stack []frame
	off   int64
	seen  bool // a top-level value started

	// current string
	isKey   bool
	discard bool // contents are not needed (suppressed or masked whole)
	// b64 tracks whether a string masked whole is base64 (bytes fields):
	// its label is then written base64-encoded, so that clients that
	// decode the field (gcloud, the client libraries) read the label
	// instead of failing on it.
	b64v    b64Validity
	strMask []byte // label when the whole string value is masked
	raw     []byte
	// view, when set, holds the raw bytes of the current string in place
	// (a string without escapes read whole from one chunk that write's
	// in-place paths did not take: one masked whole, suppressed, or
	// opened at the end of the previous chunk).
	view   []byte
	dec    []byte
	hasEsc bool
	long   bool
	uCount int
	uVal   rune
	high   rune

	// suppression of a masked container or scalar
	suppress bool
	supDepth int
	supLabel []byte

	num    int
	lit    string
	litPos int

	b64 []byte
	// bst and b64spans serve base64 runs inside string values.
	bst      b64State
	b64spans []span
	masked   int
	// clean remembers values found clean (keyed hash and length).
	clean    [128][2]cleanEntry
	cleanMRU [128]uint8
	// short remembers short values found clean, compared exactly.
	short    [1 << shortBits][2]shortEntry
	shortMRU [1 << shortBits]uint8
	// strLen counts the raw bytes of the current string.
	strLen int
}

func newJSONMasker(cp *compiledProfile, sc *scanner) *jsonMasker {
	return &jsonMasker{cp: cp, sc: sc, secretFields: cp.set.secretFields, lastKeys: cp.lastKeys, lastKeyLens: cp.lastKeyLens}
}

func (j *jsonMasker) errf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrInvalidJSON, j.off, fmt.Sprintf(format, args...))
}

func isWS(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// Labels of the secret_field rule.
var (
	lbPassword     = label("password")
	lbClientSecret = label("oauth_client_secret")
	lbPrivateKey   = label("private_key")
	lbAPIKey       = label("api_key")
	lbGCPAPIKey    = label("gcp_api_key")
	lbOAuthToken   = label("oauth_token")
	lbRefreshToken = label("oauth_refresh_token")
	lbJWT          = label("jwt")
	lbAWSSecret    = label("aws_secret_access_key")
)

// secretKeyEnds holds the first and last letters of the names
// secretKeyLabel knows, a cheap filter before normalising a key.
var secretKeyEnds = func() (t [26][26]bool) {
	for _, n := range []string{"password", "passwd", "rootpassword", "dbpassword", "clientsecret", "privatekey",
		"privatekeydata", "certprivatekey", "clientkey", "apikey", "keystring", "accesstoken", "refreshtoken",
		"idtoken", "signedjwt", "secretaccesskey"} {
		t[n[0]-'a'][n[len(n)-1]-'a'] = true
	}
	return t
}()

// The lengths of the member names secretKeyLabel reads ("passwd" to
// "secret_access_key" with a few more '_' or '-').
const (
	minSecretKey = 6
	maxSecretKey = 24
)

// secretKeyLabel returns the label for a member whose name (compared in
// lower case, without '_' and '-') says it holds a secret, or nil.
func secretKeyLabel(key []byte) []byte {
	if len(key) < minSecretKey || len(key) > maxSecretKey {
		return nil
	}
	first, last := lowerTable[key[0]], lowerTable[key[len(key)-1]]
	if first < 'a' || first > 'z' || last < 'a' || last > 'z' || !secretKeyEnds[first-'a'][last-'a'] {
		if last != '_' && last != '-' && first != '_' && first != '-' {
			return nil
		}
	}
	var buf [24]byte
	n := 0
	for _, c := range key {
		if c == '_' || c == '-' {
			continue
		}
		buf[n] = lowerTable[c]
		n++
	}
	switch string(buf[:n]) {
	case "password", "passwd", "rootpassword", "dbpassword":
		return lbPassword
	case "clientsecret":
		return lbClientSecret
	case "privatekey", "privatekeydata", "certprivatekey", "clientkey":
		return lbPrivateKey
	case "apikey":
		return lbAPIKey
	case "keystring":
		return lbGCPAPIKey
	case "accesstoken":
		return lbOAuthToken
	case "refreshtoken":
		return lbRefreshToken
	case "idtoken", "signedjwt":
		return lbJWT
	case "secretaccesskey":
		return lbAWSSecret
	}
	return nil
}

// fieldLabel returns the label of the field rule selecting the value about
// to start, or nil.
func (j *jsonMasker) fieldLabel(c byte) []byte {
	if j.suppress {
		return nil
	}
	var top *frame
	if len(j.stack) > 0 {
		top = &j.stack[len(j.stack)-1]
		if top.obj && top.secretKey != nil && c != 'n' && c != 't' && c != 'f' {
			// secretKey is only set when the secret_field rule is on.
			return top.secretKey
		}
	}
	if c == 'n' || j.lastKeys && (top == nil || !top.obj || top.keyUnmatched || j.lastKeyLens&lenBit(len(top.key)) == 0) {
		// Every field rule ends with a member name (what fieldPath.match
		// checks first) and none can name this value's member.
		return nil
	}
	for _, fp := range j.cp.fields {
		if fp.match(j.stack) {
			return fp.label
		}
	}
	return nil
}

// lenBit is the bit of a length in a set of lengths: lengths from 63 up
// share the last bit.
func lenBit(n int) uint64 { return 1 << min(n, 63) }

func (j *jsonMasker) push(obj bool) error {
	if len(j.stack) >= maxDepth {
		return j.errf("nesting deeper than %d", maxDepth)
	}
	if cap(j.stack) > len(j.stack) {
		j.stack = j.stack[:len(j.stack)+1]
		f := &j.stack[len(j.stack)-1]
		f.obj = obj
		f.key = f.key[:0]
		f.keyUnmatched = false
		f.secretKey = nil
		f.capture = ""
		f.preds = f.preds[:0]
	} else {
		j.stack = append(j.stack, frame{obj: obj})
	}
	return nil
}

// top returns the innermost open container, or nil.
func (j *jsonMasker) top() *frame {
	if len(j.stack) == 0 {
		return nil
	}
	return &j.stack[len(j.stack)-1]
}

// memberName records the decoded name d of the member whose value comes
// next in the innermost object.
func (j *jsonMasker) memberName(d []byte) {
	top := &j.stack[len(j.stack)-1]
	if len(j.cp.fields) > 0 {
		// Only field rules read the member names on the stack, and only
		// to compare them with the member names the rules hold.
		if len(d) > maxPathKey || j.cp.keyLens&lenBit(len(d)) == 0 {
			top.keyUnmatched = true
			top.key = top.key[:0]
		} else {
			top.keyUnmatched = false
			top.key = append(top.key[:0], d...)
		}
	}
	top.bytesKey = isBytesMember(d)
	top.secretKey = nil
	if j.secretFields && len(d) >= minSecretKey && len(d) <= maxSecretKey {
		top.secretKey = secretKeyLabel(d)
	}
	top.capture = ""
	if len(j.cp.predNames) > 0 {
		for _, name := range j.cp.predNames {
			if string(d) == name {
				top.capture = name
			}
		}
	}
}

// capturePred records the decoded value d of the filter member f.capture.
func (f *frame) capturePred(d []byte) {
	v := d
	if len(v) > maxPredValue {
		v = v[:maxPredValue]
	}
	replaced := false
	for i := range f.preds {
		if f.preds[i].name == f.capture {
			f.preds[i].val = append(f.preds[i].val[:0], v...)
			replaced = true
		}
	}
	if !replaced {
		f.preds = append(f.preds, predVal{name: f.capture, val: append([]byte(nil), v...)})
	}
	f.capture = ""
}
