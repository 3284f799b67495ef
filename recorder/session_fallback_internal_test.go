package recorder

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAppendEventLocalSessionMatchesJSON: the hand-written encoder writes
// local_session exactly where encoding/json does.
func TestAppendEventLocalSessionMatchesJSON(t *testing.T) {
	for _, local := range []bool{false, true} {
		e := &Event{Session: "s-1", Segment: "g-1", Seq: 3, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Kind: KindDecision,
			RequestID: "r", Decision: &DecisionEvent{Subject: "alice", Decision: DecisionAllowed}, LocalSession: local, Prev: "abc"}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("local %v:\n got %s\nwant %s", local, got, want)
		}
	}
}
