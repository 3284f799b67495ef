package recorder

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ManifestVersion is the version of the manifest format written. Version
// 1 manifests (one SEGMENT.manifest.json rewritten in place, no sequence)
// are still read.
const ManifestVersion = 2

// Manifest describes one segment of a session: its chunks, their chain
// heads and counts, and a summary for listings. Each version is a new
// object next to the chunks, SEGMENT.SEQUENCE.manifest.json, written once
// and never replaced; the one with the highest sequence is the segment's
// manifest, and the set of a session's segment manifests is the session's
// manifest.
type Manifest struct {
	Version int    `json:"version"`
	Session string `json:"session"`
	Segment string `json:"segment"`
	// Day is the YYYY/MM/DD folder holding the segment.
	Day string `json:"day"`
	// Genesis is the Prev of the segment's first event.
	Genesis string `json:"genesis"`
	// Events counts the events in the listed chunks.
	Events int64 `json:"events"`
	// Head is the hash of the last listed event.
	Head string `json:"head"`
	// Closed is set once the segment's close event is listed: no event may
	// follow.
	Closed bool          `json:"closed"`
	Chunks []ChunkRecord `json:"chunks"`
	// Summary lets listings filter without reading chunks.
	Summary Summary `json:"summary"`
	// Updated is when this manifest was written.
	Updated time.Time `json:"updated"`
	// Sequence numbers the manifests of a segment, from 1, increasing
	// (a crash may skip one); it is part of the object name.
	Sequence int64 `json:"sequence,omitempty"`
	// Previous is the segment of the same session that was started before
	// this one, as this writer or, with Redis, any replica knew it: a
	// deleted segment is named by its successor. Genesis binds it.
	Previous *SegmentRef `json:"previous,omitempty"`
	// Writer names the process that started the segment; its checkpoints
	// carry the same name.
	Writer string `json:"writer,omitempty"`
	// IdleGap is the writer's idle gap (a Go duration, "30m0s"): it
	// closes the segment after this long without events.
	IdleGap string `json:"idle_gap,omitempty"`
	// KeyID and Signature are set when manifests are signed: Signature is
	// Ed25519 over the manifest's JSON with Signature empty.
	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// SegmentRef names a segment and how far it had come: its first Events
// events, the last of which hashes to Head (empty when Events is 0).
type SegmentRef struct {
	Segment string `json:"segment"`
	// Day is the YYYY/MM/DD folder of the segment.
	Day    string `json:"day"`
	Events int64  `json:"events"`
	Head   string `json:"head,omitempty"`
}

// ChunkRecord is one uploaded chunk of a segment.
type ChunkRecord struct {
	// Name is SEGMENT-SEQ.jsonl.gz, relative to the session folder.
	Name string `json:"name"`
	// FirstSeq is the Seq of the chunk's first event.
	FirstSeq int64 `json:"first_seq"`
	// Count is the number of events in the chunk.
	Count int64 `json:"count"`
	// Prev is the Prev of the first event; Head the hash of the last.
	Prev string `json:"prev"`
	Head string `json:"head"`
	// SHA256 and Bytes describe the compressed object.
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Summary condenses a segment for `airlock sessions list`.
type Summary struct {
	First     time.Time        `json:"first"`
	Last      time.Time        `json:"last"`
	Subjects  []string         `json:"subjects,omitempty"`
	Actors    []string         `json:"actors,omitempty"`
	Methods   []string         `json:"methods,omitempty"`
	Decisions map[string]int64 `json:"decisions,omitempty"`
	Requests  int64            `json:"requests"`
}

func addUnique(list []string, v string) []string {
	if v == "" {
		return list
	}
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= 64 {
		return list
	}
	return append(list, v)
}

// add folds one event into the summary.
func (s *Summary) add(e eventSummary) {
	if s.First.IsZero() || e.time.Before(s.First) {
		s.First = e.time
	}
	if e.time.After(s.Last) {
		s.Last = e.time
	}
	if !e.request {
		return
	}
	s.Subjects = addUnique(s.Subjects, e.subject)
	s.Actors = addUnique(s.Actors, e.actor)
	s.Methods = addUnique(s.Methods, e.method)
	if e.kind == KindDecision {
		if s.Decisions == nil {
			s.Decisions = map[string]int64{}
		}
		s.Decisions[e.decision]++
		s.Requests++
	}
}

// eventSummary is what a manifest's summary takes from one event.
type eventSummary struct {
	time                             time.Time
	kind                             string
	request                          bool // a decision or request event
	subject, actor, method, decision string
}

func summarize(e *Event) eventSummary {
	s := eventSummary{time: e.Time, kind: e.Kind}
	if d := e.Decision; d != nil {
		s.request, s.subject, s.actor, s.method, s.decision = true, d.Subject, d.Actor, d.GCPMethod, d.Decision
	} else if q := e.Request; q != nil {
		s.request, s.subject, s.actor, s.method = true, q.Subject, q.Actor, q.GCPMethod
	}
	return s
}

// Genesis is the Prev of the first event of a segment: it binds the chain
// to its session and segment, so a segment cannot be moved elsewhere, and
// to the previous segment of the session when there is one, so that its
// successor's record of it cannot be edited away.
func Genesis(session, segment string, previous *SegmentRef) string {
	s := "airlock-segment\n" + session + "\n" + segment
	if p := previous; p != nil {
		s += fmt.Sprintf("\nafter\n%s\n%s\n%d\n%s", p.Segment, p.Day, p.Events, p.Head)
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// lineHash is the chain hash of one event line.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// ChunkName is the object name of chunk seq of a segment.
func ChunkName(segment string, seq int) string {
	return fmt.Sprintf("%s-%06d.jsonl.gz", segment, seq)
}

// ManifestName is the object name of manifest sequence of a segment;
// sequence 0 names the single manifest of version 1.
func ManifestName(segment string, sequence int64) string {
	if sequence == 0 {
		return segment + manifestSuffix
	}
	return fmt.Sprintf("%s.%06d%s", segment, sequence, manifestSuffix)
}

const manifestSuffix = ".manifest.json"

// parseManifestName reads a manifest object name (without its folder):
// the segment and the sequence (0 for a version 1 manifest).
func parseManifestName(base string) (segment string, sequence int64, ok bool) {
	stem, ok := strings.CutSuffix(base, manifestSuffix)
	if !ok || stem == "" {
		return "", 0, false
	}
	if i := strings.LastIndexByte(stem, '.'); i > 0 && segmentIDPattern.MatchString(stem[:i]) {
		if n, err := strconv.ParseInt(stem[i+1:], 10, 64); err == nil && n > 0 && allDigits(stem[i+1:]) {
			return stem[:i], n, true
		}
	}
	return stem, 0, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// segmentIDPattern is what a segment id looks like.
var segmentIDPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z\.[0-9a-f]{16}$`)

// sessionPath is the folder of a session in a day.
func sessionPath(day, session string) string { return day + "/" + session + "/" }

// Signer signs manifests with an Ed25519 key.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// KeyID names an Ed25519 public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadSigner reads a PEM "PRIVATE KEY" (PKCS #8) Ed25519 key file.
func LoadSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("recorder: signing key %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("recorder: signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("recorder: signing key %s: not an Ed25519 key", path)
	}
	return &Signer{key: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}, nil
}

// NewSigner wraps an Ed25519 private key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, keyID: KeyID(key.Public().(ed25519.PublicKey))}
}

// Public is the verification key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// LoadPublicKey reads an Ed25519 key for verification from a PEM file
// holding either the public key (PKIX) or the private key (PKCS #8).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("recorder: public key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		if pub, ok := k.(ed25519.PublicKey); ok {
			return pub, nil
		}
		return nil, fmt.Errorf("recorder: public key %s: not an Ed25519 key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("recorder: public key %s: neither a PKIX public nor a PKCS #8 private key", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("recorder: public key %s: not an Ed25519 key", path)
	}
	return priv.Public().(ed25519.PublicKey), nil
}

// document is what a Signer signs: a manifest or a checkpoint, as its JSON
// with Signature empty.
type document interface {
	unsigned() ([]byte, error)
	setSignature(keyID, sig string)
	signature() (keyID, sig string)
}

func (m *Manifest) unsigned() ([]byte, error) {
	c := *m
	c.Signature = ""
	return json.Marshal(&c)
}

func (m *Manifest) setSignature(keyID, sig string) { m.KeyID, m.Signature = keyID, sig }
func (m *Manifest) signature() (string, string)    { return m.KeyID, m.Signature }

// sign sets the document's key id and signature.
func (s *Signer) sign(d document) error {
	d.setSignature(s.keyID, "")
	b, err := d.unsigned()
	if err != nil {
		return err
	}
	d.setSignature(s.keyID, base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, b)))
	return nil
}

// errBadSignature is wrapped by signature checks.
var errBadSignature = errors.New("bad signature")

// checkSignature verifies d against pub.
func checkSignature(d document, pub ed25519.PublicKey) error {
	keyID, signature := d.signature()
	if signature == "" {
		return fmt.Errorf("not signed")
	}
	if keyID != KeyID(pub) {
		return fmt.Errorf("signed by key %s, not by %s", keyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errBadSignature
	}
	b, err := d.unsigned()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, b, sig) {
		return errBadSignature
	}
	return nil
}
