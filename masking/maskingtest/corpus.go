// Package maskingtest holds test data shared by the masker's benchmarks and
// the comparison bench module: both must measure the same bytes.
package maskingtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// InstanceList is about size bytes of GCP instance-list JSON (startup
// scripts, fingerprints, self links, service-account addresses) with a
// Google API key and an e-mail address planted in every 120th instance, at
// most maxPlanted times (0: no limit). It is the same for the same
// arguments.
func InstanceList(size, maxPlanted int) []byte {
	r := rand.New(rand.NewPCG(7, 9))
	var items []map[string]any
	n, planted := 0, 0
	for i := 0; n < size; i++ {
		fp := make([]byte, 8)
		for k := range fp {
			fp[k] = byte(r.IntN(256))
		}
		script := "#!/bin/bash\napt-get update\napt-get install -y nginx\nsystemctl enable --now nginx\n"
		if i%120 == 5 && (maxPlanted <= 0 || planted < maxPlanted) {
			planted++
			script += fmt.Sprintf("export MAPS_KEY=AIzaSy%s\necho contact ops-%d@example.com\n", randomKey(r, 33), i)
		}
		base := "https://www.googleapis.com/compute/v1/projects/acme-prod"
		it := map[string]any{
			"kind": "compute#instance", "id": fmt.Sprint(r.Int64()), "name": fmt.Sprintf("web-%d", i),
			"machineType":       base + "/zones/us-east1-b/machineTypes/e2-medium",
			"status":            "RUNNING",
			"networkInterfaces": []any{map[string]any{"network": base + "/global/networks/default", "networkIP": fmt.Sprintf("10.0.%d.%d", i/250, i%250), "fingerprint": fmt.Sprintf("%x", fp)}},
			"metadata":          map[string]any{"fingerprint": fmt.Sprintf("%x=", fp), "items": []any{map[string]any{"key": "startup-script", "value": script}}},
			"serviceAccounts":   []any{map[string]any{"email": "123456789012-compute@developer.gserviceaccount.com", "scopes": []any{"https://www.googleapis.com/auth/cloud-platform"}}},
			"selfLink":          fmt.Sprintf("%s/zones/us-east1-b/instances/web-%d", base, i),
			"labelFingerprint":  "42WmSpB8rSM=",
			"creationTimestamp": "2026-10-01T09:12:44.123-07:00",
		}
		b, _ := json.Marshal(it)
		n += len(b) + 1
		items = append(items, it)
	}
	out, _ := json.Marshal(map[string]any{"kind": "compute#instanceList", "items": items})
	return out
}

func randomKey(r *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// StreamedInstanceList is about 1 MiB of instance-list JSON with a Google
// API key planted in the startup script of every 120th instance: the body
// the ext_proc benchmarks stream, and the masker's benchmark of it.
func StreamedInstanceList() []byte {
	var b strings.Builder
	b.WriteString(`{"kind":"compute#instanceList","items":[`)
	for i := 0; b.Len() < 1<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		script := `#!/bin/bash\napt-get install -y nginx\n`
		if i%120 == 5 {
			script += fmt.Sprintf(`export KEY=AIzaSy%033d\n`, i)
		}
		fmt.Fprintf(&b, `{"kind":"compute#instance","id":"%d","name":"web-%d","selfLink":"https://www.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-%d","metadata":{"fingerprint":"4mWQ8Y7bX0c=","items":[{"key":"startup-script","value":"%s"}]},"serviceAccounts":[{"email":"123-compute@developer.gserviceaccount.com"}],"labelFingerprint":"42WmSpB8rSM="}`, 4857120947312045321+i, i, i, script)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}
