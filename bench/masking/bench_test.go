// Package masking compares airlock's masker with hoop's alcatraz and
// gitleaks' detector on the same generated 1 MiB corpus of GCP-shaped JSON.
// It is a separate module so that neither competitor enters airlock's
// dependencies. Run: cd bench/masking && go test -bench . -benchtime 3x
package masking

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/hoophq/alcatraz"
	"github.com/zricethezav/gitleaks/v8/detect"

	airlock "github.com/airlockhq/airlock/masking"
)

var (
	corpusOnce sync.Once
	corpus     []byte
)

// Corpus is about 1 MiB of instance-list JSON (startup scripts,
// fingerprints, self links, service-account addresses) with 9 API keys and
// 9 e-mail addresses planted.
func Corpus() []byte {
	corpusOnce.Do(func() {
		r := rand.New(rand.NewPCG(7, 9))
		var items []map[string]any
		size, planted := 0, 0
		for i := 0; size < 1<<20; i++ {
			fp := make([]byte, 8)
			for k := range fp {
				fp[k] = byte(r.IntN(256))
			}
			script := "#!/bin/bash\napt-get update\napt-get install -y nginx\nsystemctl enable --now nginx\n"
			if i%120 == 5 && planted < 9 {
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
			size += len(b) + 1
			items = append(items, it)
		}
		corpus, _ = json.Marshal(map[string]any{"kind": "compute#instanceList", "items": items})
	})
	return corpus
}

func BenchmarkAirlockJSON(b *testing.B) {
	e, err := airlock.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := Corpus()
	p := airlock.Profile{Detectors: []string{airlock.GroupAll}}
	b.SetBytes(int64(len(body)))
	hits := 0
	out := make([]byte, 0, len(body)+4096)
	for b.Loop() {
		s, err := e.NewStream(p, airlock.JSON)
		if err != nil {
			b.Fatal(err)
		}
		out = out[:0]
		for off := 0; off < len(body); off += 64 << 10 {
			if out, err = s.Write(out, body[off:min(off+64<<10, len(body))]); err != nil {
				b.Fatal(err)
			}
		}
		if out, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
}

func BenchmarkAirlockText(b *testing.B) {
	e, err := airlock.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := Corpus()
	p := airlock.Profile{Detectors: []string{airlock.GroupAll}}
	b.SetBytes(int64(len(body)))
	hits := 0
	for b.Loop() {
		s, err := e.NewStream(p, airlock.Text)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := s.Write(nil, body)
		if _, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		hits = s.Masked()
	}
	b.ReportMetric(float64(hits), "hits")
}

func benchAlcatraz(b *testing.B, threshold *float64) {
	eng := alcatraz.NewEngine()
	text := string(Corpus())
	b.SetBytes(int64(len(text)))
	hits := 0
	for b.Loop() {
		hits = len(eng.Analyze(text, alcatraz.Options{Threshold: threshold}))
	}
	b.ReportMetric(float64(hits), "hits")
}

func BenchmarkAlcatraz(b *testing.B) { benchAlcatraz(b, nil) }

func BenchmarkAlcatrazThreshold04(b *testing.B) {
	t := 0.4
	benchAlcatraz(b, &t)
}

func BenchmarkGitleaks(b *testing.B) {
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	text := string(Corpus())
	b.SetBytes(int64(len(text)))
	hits := 0
	for b.Loop() {
		hits = len(d.DetectString(text))
	}
	b.ReportMetric(float64(hits), "hits")
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
