package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
)

const envoyUsage = `Usage:
  airlock envoy config [--config FILE] [--output FILE]
                                         print (or write) the Envoy bootstrap (YAML) for this configuration
  airlock envoy validate FILE...         check Envoy bootstrap files against Envoy's protos
`

// runEnvoy is `airlock envoy config|validate`.
func runEnvoy(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, envoyUsage)
		return 2
	}
	switch args[0] {
	case "config":
		return envoyConfig(args[1:], stdout, stderr)
	case "validate":
		return envoyValidate(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, envoyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "airlock envoy: unknown command %q\n\n%s", args[0], envoyUsage)
	return 2
}

// envoyConfig renders the bootstrap, validates it and prints it.
func envoyConfig(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("envoy config", flag.ContinueOnError)
	fl.SetOutput(stderr)
	path := fl.String("config", "", "airlock.yaml (default: the embedded defaults)")
	output := fl.String("output", "", "write the bootstrap to this file (replaced whole) instead of stdout,\n"+
		"as an init container does for an Envoy beside it")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "airlock envoy config: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = envoyLoadConfig(*path, stderr); err != nil {
			fmt.Fprintln(stderr, "airlock envoy config:", err)
			return 1
		}
	}
	out, err := envoy.Bootstrap(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "airlock envoy config:", err)
		return 1
	}
	// The rendered file must load in Envoy: check it before printing.
	if err := envoy.ValidateBootstrap(out); err != nil {
		fmt.Fprintln(stderr, "airlock envoy config: the rendered bootstrap is invalid (a bug):", err)
		return 1
	}
	if len(cfg.Credentials) == 0 {
		fmt.Fprintln(stderr, "airlock envoy config: warning: no credentials configured; Envoy will forward without a GCP credential")
	}
	if *output != "" {
		if err := writeFileAtomic(*output, out); err != nil {
			fmt.Fprintln(stderr, "airlock envoy config:", err)
			return 1
		}
		return 0
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, "airlock envoy config:", err)
		return 1
	}
	return 0
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so that a reader never sees half a bootstrap.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".envoy-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// envoyValidate checks bootstrap files.
func envoyValidate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, envoyUsage)
		return 2
	}
	code := 0
	for _, p := range args {
		data, err := os.ReadFile(p)
		if err == nil {
			err = envoy.ValidateBootstrap(data)
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", p)
	}
	return code
}

// envoyLoadConfig loads airlock.yaml for rendering. The bootstrap is often
// rendered away from the airlock host (a workstation, CI, a manifest
// build), so files that only airlock reads (policies, keys) need not exist
// here: those errors become warnings. Every other error stops.
func envoyLoadConfig(path string, stderr io.Writer) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.Parse(data)
	if err == nil {
		return cfg, nil
	}
	var errs config.Errors
	if cfg == nil || !errors.As(err, &errs) {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	for _, e := range errs {
		if !envoyFileError(e) {
			return nil, fmt.Errorf("%s:\n%w", path, err)
		}
	}
	for _, e := range errs {
		fmt.Fprintf(stderr, "airlock envoy config: warning: %v (not needed to render Envoy's configuration)\n", e)
	}
	return cfg, nil
}

// envoyFileError reports whether e is about a file airlock reads at run
// time: a key naming such a file, or airlock's SDS certificate files
// missing here (other sds.tls_* errors stop the rendering).
func envoyFileError(e *config.Error) bool {
	switch key := e.Key; {
	case strings.HasPrefix(key, "policies.paths["), strings.HasSuffix(key, ".service_account_key"), key == "recorder.signing_key":
		return true
	case key == "sds.tls_cert" || key == "sds.tls_key" || key == "sds.client_ca":
		return strings.HasSuffix(e.Msg, "no such file or directory")
	}
	return false
}
