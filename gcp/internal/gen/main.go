// Command gen regenerates the embedded GCP operation catalog and request
// schemas from the Discovery documents of the google.golang.org/api module
// pinned in go.mod.
//
//	go run ./internal/gen -o catalog.jsonl.gz -schemas schemas.jsonl.gz
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
	"github.com/airlockhq/airlock/gcp/internal/schemagen"
)

func main() {
	out := flag.String("o", "catalog.jsonl.gz", "the catalog file")
	schemas := flag.String("schemas", "schemas.jsonl.gz", "the request-schema file")
	flag.Parse()
	if err := run(*out, *schemas); err != nil {
		slog.Error("gen failed", "err", err)
		os.Exit(1)
	}
}

func run(out, schemasOut string) error {
	start := time.Now()
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		return fmt.Errorf("gen: locate google.golang.org/api (is it downloaded? run go mod download): %w", err)
	}
	files, err := catalogen.ModuleDocuments(strings.TrimSpace(string(b)))
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
	docs, err := schemagen.Generate(files)
	if err != nil {
		return err
	}
	if data, err = schemagen.Encode(docs); err != nil {
		return err
	}
	if err := os.WriteFile(schemasOut, data, 0o644); err != nil {
		return fmt.Errorf("gen: write %s: %w", schemasOut, err)
	}
	slog.Info("request schemas written", "file", schemasOut, "bytes", len(data), "documents", len(docs))
	return nil
}
