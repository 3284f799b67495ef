// Command airlock runs airlock's servers (`airlock serve`) and is the CLI of
// the people around them: policy authors, approvers and auditors.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `airlock: policy, approvals, masking and recording for AI agents on Google Cloud.

Usage:
  airlock serve [--config FILE]              run the servers (no file: a local trial)
  airlock check --method M --url URL [--token T]   ask a running server for one decision
  airlock dev-token --sub NAME [--groups a,b]      print a token from the dev issuer
  airlock login --issuer URL [--token-file F]      sign in (device flow) and keep a token file fresh
  airlock policy test PATH...                run the tests: blocks of policy files
  airlock policy lint PATH...                load and type-check policy files, check method names
  airlock policy explain --url URL PATH...   show every variable and rule for one request
  airlock approvals list|show|approve|deny   answer approval requests
  airlock sessions list|show|replay|verify|export|prune   audit recorded sessions
  airlock envoy config [--config FILE]       print the Envoy bootstrap for this config
  airlock envoy validate FILE...             validate Envoy configs against Envoy's protos
  airlock bench authz|noop-authz             load-test an ext_authz server
  airlock version                            print the version

Run "airlock COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(ctx, rest, stdout, stderr)
	case "dev-token":
		return runDevToken(ctx, rest, stdout, stderr)
	case "login":
		return runLogin(ctx, rest, stdout, stderr)
	case "policy":
		return runPolicy(ctx, rest, stdout, stderr)
	case "approvals":
		return runApprovals(ctx, rest, stdout, stderr)
	case "sessions":
		return runSessions(ctx, rest, stdout, stderr)
	case "envoy":
		return runEnvoy(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		return fmt.Sprintf("airlock %s (%s)", v, info.GoVersion)
	}
	return "airlock " + v
}
