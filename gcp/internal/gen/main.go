// Command gen regenerates the embedded GCP operation catalog from the
// Discovery documents of the google.golang.org/api module pinned in go.mod.
//
//	go run ./internal/gen -o catalog.jsonl.gz
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
)

func main() {
	out := flag.String("o", "catalog.jsonl.gz", "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		slog.Error("gen failed", "err", err)
		os.Exit(1)
	}
}

func run(out string) error {
	start := time.Now()
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		return fmt.Errorf("gen: locate google.golang.org/api (is it downloaded? run go mod download): %w", err)
	}
	dir := strings.TrimSpace(string(b))
	files, err := catalogen.ModuleDocuments(dir)
	if err != nil {
		return err
	}
	apis, st, err := catalogen.Generate(files)
	if err != nil {
		return err
	}
	data, err := catalogen.Encode(apis)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("gen: write %s: %w", out, err)
	}
	slog.Info("catalog written", "file", out, "bytes", len(data), "documents", st.Documents,
		"skipped", st.Skipped, "methods", st.Methods, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
