package main

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/masking"
)

var texts = []string{"/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "maxResults=50", "compute.googleapis.com", "GET", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances?maxResults=50", "https", "application/json", "google-cloud-sdk gcloud/500.0.0", "gl-go/1.26 gdcl/0.312.0", "5f0c3a9e-2b7d-4c61-9a57-0d2e8b1f4c33"}

func BenchmarkScratchJoined(b *testing.B) {
	eng, _ := masking.NewEngine(nil)
	m := requestMasker(eng)
	j := []byte(strings.Join(texts, "\n"))
	for b.Loop() {
		m(j)
	}
}
func BenchmarkScratchEach(b *testing.B) {
	eng, _ := masking.NewEngine(nil)
	m := requestMasker(eng)
	var bs [][]byte
	for _, t := range texts {
		bs = append(bs, []byte(t))
	}
	for b.Loop() {
		for _, t := range bs {
			m(t)
		}
	}
}
func BenchmarkScratchOneShort(b *testing.B) {
	eng, _ := masking.NewEngine(nil)
	m := requestMasker(eng)
	t := []byte("application/json")
	for b.Loop() {
		m(t)
	}
}
