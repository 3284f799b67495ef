package recorder

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/airlockhq/airlock/masking"
)

// countingMasker masks "SECRET" and records every text it was given.
type countingMasker struct {
	mu   sync.Mutex
	seen []string
}

func (c *countingMasker) mask(b []byte) []byte {
	c.mu.Lock()
	c.seen = append(c.seen, strings.Split(string(b), "\n")...)
	c.mu.Unlock()
	return []byte(strings.ReplaceAll(string(b), "SECRET", "[MASKED:s]"))
}

func (c *countingMasker) took(text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.seen, text)
}

func (c *countingMasker) reset() {
	c.mu.Lock()
	c.seen = nil
	c.mu.Unlock()
}

// TestHeaderMaskerRemembersCleanValues: a value the masker left unchanged
// twice is not masked again; a value it changed, a credential, a long
// value and the same value under another name always are.
func TestHeaderMaskerRemembersCleanValues(t *testing.T) {
	c := &countingMasker{}
	m := newHeaderMasker(c.mask)
	long := "ua/" + strings.Repeat("x", maxCleanLen)
	headers := func(id string) map[string]string {
		return map[string]string{
			"user-agent": "gcloud/500", "x-long": long, "x-note": "a SECRET here",
			"x-custom": "Bearer not-a-secret-to-the-masker", "x-request-id": id,
		}
	}
	for i := range 2 {
		m.maskHeaders(headers(fmt.Sprint("id-", i)), "/v1/p", "alt=json")
	}
	c.reset()
	hs, path, query := m.maskHeaders(headers("id-2"), "/v1/p", "alt=json")
	want := []header{
		{"user-agent", "gcloud/500"}, {"x-custom", Masked}, {"x-long", long},
		{"x-note", "a [MASKED:s] here"}, {"x-request-id", "id-2"},
	}
	if !slices.Equal(hs, want) || path != "/v1/p" || query != "alt=json" {
		t.Fatalf("third request: %v %q %q, want %v /v1/p alt=json", hs, path, query, want)
	}
	for _, v := range []string{"gcloud/500", "/v1/p", "alt=json"} {
		if c.took(v) {
			t.Errorf("%q was masked again after it came back unchanged twice", v)
		}
	}
	for _, v := range []string{"a SECRET here", long, "id-2"} {
		if !c.took(v) {
			t.Errorf("%q was not masked", v)
		}
	}
	if c.took("Bearer not-a-secret-to-the-masker") {
		t.Error("a credential reached the masker")
	}

	// A value remembered under one name is a credential under another,
	// and a path remembered is not a remembered query.
	c.reset()
	hs, _, query = m.maskHeaders(map[string]string{"authorization": "gcloud/500", "x-api-key": "gcloud/500"}, "", "/v1/p")
	if want := []header{{"authorization", Masked}, {"x-api-key", Masked}}; !slices.Equal(hs, want) {
		t.Errorf("credential names: %v, want %v", hs, want)
	}
	if !c.took("/v1/p") || query != "/v1/p" {
		t.Errorf("a query equal to a remembered path was not masked as a query (masked: %v)", c.took("/v1/p"))
	}

	// Envoy's x-request-id, a UUID, is kept without a masking pass; any
	// other value of it is masked.
	c.reset()
	const uuid = "4c7e1f0a-0001-4b8e-9d6f-00000000000a"
	hs, _, _ = m.maskHeaders(map[string]string{"x-request-id": uuid, "x-other": uuid}, "", "")
	if want := []header{{"x-other", uuid}, {"x-request-id", uuid}}; !slices.Equal(hs, want) {
		t.Errorf("UUIDs: %v, want %v", hs, want)
	}
	if c.took(uuid) != true || len(c.seen) != 1 {
		t.Errorf("masked %v: want the x-other UUID alone", c.seen)
	}
	c.reset()
	if hs, _, _ = m.maskHeaders(map[string]string{"x-request-id": "id SECRET"}, "", ""); hs[0].value != "id [MASKED:s]" {
		t.Errorf("a non-UUID x-request-id: %v", hs)
	}

	// The nil masker remembers nothing and masks credentials alone.
	if hs, _, _ := newHeaderMasker(nil).maskHeaders(map[string]string{"x-note": "a SECRET", "cookie": "c"}, "", ""); !slices.Equal(hs, []header{{"cookie", Masked}, {"x-note", "a SECRET"}}) {
		t.Errorf("nil masker: %v", hs)
	}
}

// TestCleanSetIsBounded: values that never repeat take no slot, and the
// table keeps at most one pair a slot.
func TestCleanSetIsBounded(t *testing.T) {
	c := &cleanSet{seed: maphash.MakeSeed()}
	for i := range 3 * cleanSlots {
		c.add("x-request-id", fmt.Sprint(i))
	}
	kept := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			kept++
		}
	}
	if kept != 0 {
		t.Fatalf("%d values seen once were kept", kept)
	}
	for i := range 3 * cleanSlots {
		v := fmt.Sprint(i)
		c.add("accept", v)
		c.add("accept", v)
	}
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			kept++
		}
	}
	if kept > cleanSlots || kept < cleanSlots/2 {
		t.Fatalf("%d slots hold a pair, want at most %d and most of them", kept, cleanSlots)
	}
}

// TestHeaderMaskerConcurrent runs the masker from many goroutines (go
// test -race): every result is the masked form.
func TestHeaderMaskerConcurrent(t *testing.T) {
	m := newHeaderMasker((&countingMasker{}).mask)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				h := map[string]string{"accept": fmt.Sprint("v", i%7), "x-note": fmt.Sprint("SECRET ", i%5), "x-request-id": fmt.Sprint(g, "-", i)}
				hs, _, _ := m.maskHeaders(h, "", "")
				if hs[1].value != fmt.Sprint("[MASKED:s] ", i%5) || hs[0].value != fmt.Sprint("v", i%7) {
					t.Errorf("got %v", hs)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkMaskHeaders is what the recorder does with a Check's headers,
// path and query, with the default profile's masker: lower-case, sort,
// credentials masked, one masker pass. "first" masks every value, as a
// masker that remembers nothing does; "repeat" is one masker over requests that
// differ in their x-request-id alone, as a poll's do.
func BenchmarkMaskHeaders(b *testing.B) {
	e, err := masking.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	mask := masking.NewRequestMasker(e).Value
	h := map[string]string{":method": "GET", ":path": "/compute/v1/projects/p/zones/z/instances?maxResults=50", ":authority": "compute.googleapis.com",
		"authorization": "Bearer x", "user-agent": "google-cloud-sdk gcloud/470.0.0", "x-goog-api-client": "gl-go/1.22", "accept": "application/json",
		"x-request-id": "9f1c", "x-airlock-session": "fix-1"}
	path, query := "/compute/v1/projects/p/zones/z/instances", "maxResults=50"
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			(&headerMasker{mask: mask}).maskHeaders(h, path, query)
		}
	})
	b.Run("repeat", func(b *testing.B) {
		m := newHeaderMasker(mask)
		ids := make([]string, 1024)
		for i := range ids {
			ids[i] = fmt.Sprintf("4c7e1f0a-%04d-4b8e-9d6f-%012d", i, i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h["x-request-id"] = ids[i%len(ids)]
			i++
			m.maskHeaders(h, path, query)
		}
	})
}
