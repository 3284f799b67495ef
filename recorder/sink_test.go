package recorder_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

func TestFileSinkConformance(t *testing.T) {
	recordertest.TestSink(t, func(t *testing.T) recorder.Sink {
		s, err := recorder.NewFileSink(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestGCSSinkConformance(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	var n atomic.Int64
	recordertest.TestSink(t, func(t *testing.T) recorder.Sink {
		return recorder.NewGCSSink(client, "audit", fmt.Sprintf("run%d/sessions", n.Add(1)))
	})
}

func TestOpenSinkRejectsUnknownSchemes(t *testing.T) {
	for _, url := range []string{"s3://bucket/x", "file://", "gs://", "/var/lib/x"} {
		if _, err := recorder.OpenSink(context.Background(), url, recorder.SinkOptions{}); err == nil {
			t.Errorf("OpenSink(%q) succeeded, want an error", url)
		}
	}
}
