package gcp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchBody is a 4 KiB Compute instance insert: nested objects, arrays,
// labels and metadata, as an agent sends it.
func benchBody() []byte {
	var items []string
	for i := 0; i < 24; i++ {
		items = append(items, fmt.Sprintf(`{"key":"key-%02d","value":"value %02d of the instance metadata, plain text"}`, i, i))
	}
	b := `{"name":"web-1","machineType":"zones/us-east1-b/machineTypes/e2-standard-4",` +
		`"labels":{"env":"dev","team":"payments","cost_center":"cc-104"},` +
		`"disks":[{"boot":true,"autoDelete":true,"initializeParams":{"sourceImage":"projects/debian-cloud/global/images/family/debian-12","diskSizeGb":"50"}}],` +
		`"networkInterfaces":[{"network":"global/networks/default","accessConfigs":[{"name":"External NAT","type":"ONE_TO_ONE_NAT"}]}],` +
		`"serviceAccounts":[{"email":"web@acme-dev.iam.gserviceaccount.com","scopes":["https://www.googleapis.com/auth/cloud-platform"]}],` +
		`"metadata":{"items":[` + strings.Join(items, ",") + `]}}`
	return []byte(b)
}

// BenchmarkReadBody measures reading a body as Google does (strict parse,
// duplicate members refused, Discovery spelling) against the plain
// json.Unmarshal it replaced, in the same run.
func BenchmarkReadBody(b *testing.B) {
	body := benchBody()
	op := Operation{Service: "compute", Version: "v1", Method: "compute.instances.insert"}
	b.Run("strict+schema", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			v, why, err := readBody("/compute/v1/projects/p/zones/z/instances", "application/json", body, false, 1<<20)
			if err != nil || why != "" {
				b.Fatal(err, why)
			}
			if _, err := normalizeBody(op, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
