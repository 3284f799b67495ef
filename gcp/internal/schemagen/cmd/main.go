// Command cmd regenerates the embedded request-schema table from the
// Discovery documents of the google.golang.org/api module pinned in go.mod.
//
//	go run ./internal/schemagen/cmd -o schemas.jsonl.gz
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
	"github.com/airlockhq/airlock/gcp/internal/schemagen"
)

func main() {
	out := flag.String("o", "schemas.jsonl.gz", "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		slog.Error("schemagen failed", "err", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "google.golang.org/api").Output()
	if err != nil {
		return fmt.Errorf("locate google.golang.org/api (is it downloaded? run go mod download): %w", err)
	}
	files, err := catalogen.ModuleDocuments(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	docs, err := schemagen.Generate(files)
	if err != nil {
		return err
	}
	data, err := schemagen.Encode(docs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	n := 0
	for _, d := range docs {
		n += len(d.Methods)
	}
	slog.Info("request schemas written", "file", out, "bytes", len(data), "documents", len(docs), "methods", n)
	return nil
}
