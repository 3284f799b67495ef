package masking

import (
	"strings"
	"testing"
)

// TestRequestMaskerMasksKeysInURLs: the request masker finds an API key in
// a query string and in header values, the text the recorder and the
// approvals pass it.
func TestRequestMaskerMasksKeysInURLs(t *testing.T) {
	eng, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	mask := NewRequestMasker(eng).Value
	const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	for _, in := range []string{"?key=" + key + "&alt=json", "key=" + key, "gcloud/500\n" + key + "\napplication/json"} {
		if got := string(mask([]byte(in))); strings.Contains(got, key) || !strings.Contains(got, "[MASKED") {
			t.Errorf("mask(%q) = %q", in, got)
		}
	}
	if got := string(mask([]byte("maxResults=50&pageToken=abc"))); got != "maxResults=50&pageToken=abc" {
		t.Errorf("an ordinary query changed: %q", got)
	}
}

func TestLooksJSON(t *testing.T) {
	for in, want := range map[string]bool{`{"a":1}`: true, " \n\t[1]": true, "": false, "/compute/v1": false, "key=AIza": false,
		strings.Repeat(" ", 70) + "{}": false} { // only the first 64 bytes are looked at
		if got := looksJSON([]byte(in)); got != want {
			t.Errorf("looksJSON(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRequestMaskerBody(t *testing.T) {
	eng, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewRequestMasker(eng)
	body := []byte(`{"payload":{"data":"c2VjcmV0LXZhbHVl"},"note":"plain"}`)
	// Without rules the payload is not a known secret; the rule selected
	// for the request masks the field whatever it holds.
	if got := string(m.Body(body, nil)); got != string(body) {
		t.Fatalf("no rules: %s", got)
	}
	got := string(m.Body(body, []Rule{{Policy: "p", Name: "secret-payloads", Fields: []string{"payload.data"}}}))
	if strings.Contains(got, "c2VjcmV0LXZhbHVl") || !strings.Contains(got, `"note":"plain"`) {
		t.Fatalf("with a field rule: %s", got)
	}
	// JSON that is not JSON after all is masked as text.
	const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	if got := string(m.Body([]byte(`{"broken": "`+key), nil)); strings.Contains(got, key) {
		t.Fatalf("broken JSON kept the key: %s", got)
	}
}
