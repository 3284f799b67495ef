package handoff

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestErrorBody(t *testing.T) {
	var got map[string]any
	if err := json.Unmarshal(ErrorBody(403, "PERMISSION_DENIED", "airlock: denied by rule r.", "POLICY_DENIED", map[string]string{"rule": "r", "request_id": "q"}), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"error": map[string]any{
		"code": 403.0, "status": "PERMISSION_DENIED", "message": "airlock: denied by rule r.",
		"details": []any{map[string]any{"@type": ErrorInfoType, "reason": "POLICY_DENIED", "domain": "airlock",
			"metadata": map[string]any{"rule": "r", "request_id": "q"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// Without a reason, no ErrorInfo (the HTTP API's errors).
	if b := string(ErrorBody(404, "NOT_FOUND", "no such approval", "", nil)); b != `{"error":{"code":404,"status":"NOT_FOUND","message":"no such approval"}}` {
		t.Fatalf("got %s", b)
	}
}
