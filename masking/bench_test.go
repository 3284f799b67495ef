package masking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// benchCorpus builds about n bytes of GCP-shaped JSON (an instance list with
// startup scripts, fingerprints, self links and service-account addresses)
// with a few API keys and e-mail addresses planted per MiB.
func benchCorpus(n int) []byte {
	r := rand.New(rand.NewPCG(7, 9))
	var items []map[string]any
	size := 0
	for i := 0; size < n; i++ {
		fp := make([]byte, 8)
		for k := range fp {
			fp[k] = byte(r.IntN(256))
		}
		script := "#!/bin/bash\napt-get update\napt-get install -y nginx\nsystemctl enable --now nginx\n"
		if i%120 == 5 {
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
		size += len(b) + 1
		items = append(items, it)
	}
	out, _ := json.Marshal(map[string]any{"kind": "compute#instanceList", "items": items})
	return out
}

func benchMask(b *testing.B, p Profile, kind Kind, body []byte, chunk int) {
	e := testEngine(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	out := make([]byte, 0, len(body)+4096)
	hits := 0
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := e.NewStream(p, kind)
		if err != nil {
			b.Fatal(err)
		}
		out = out[:0]
		for off := 0; off < len(body); off += chunk {
			if out, err = s.Write(out, body[off:min(off+chunk, len(body))]); err != nil {
				b.Fatal(err)
			}
		}
		if out, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
	// Throughput per core from the CPU time used, which stays meaningful
	// on a loaded machine where wall time does not.
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(len(body))*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
	}
}

// cpuTime is the user+system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMask1MiB masks 1 MiB of JSON with every detector on.
func BenchmarkMask1MiB(b *testing.B) {
	benchMask(b, Profile{Detectors: []string{GroupAll}}, JSON, benchCorpus(1<<20), 64<<10)
}

// BenchmarkMask1MiBDefault masks 1 MiB of JSON with the default profile.
func BenchmarkMask1MiBDefault(b *testing.B) {
	benchMask(b, DefaultProfile(), JSON, benchCorpus(1<<20), 64<<10)
}

// BenchmarkMaskText1MiB scans the same bytes as text (object downloads).
func BenchmarkMaskText1MiB(b *testing.B) {
	benchMask(b, Profile{Detectors: []string{GroupAll}}, Text, benchCorpus(1<<20), 64<<10)
}

// BenchmarkPrefilter measures the Aho-Corasick pass alone.
func BenchmarkPrefilter(b *testing.B) {
	e := testEngine(b)
	body := benchCorpus(1 << 20)
	b.SetBytes(int64(len(body)))
	n := 0
	for b.Loop() {
		e.ac.scan(body, func(int32, int) { n++ })
	}
	_ = bytes.MinRead
}

// randomKey returns n random characters of the API key alphabet.
func randomKey(r *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}
