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
  airlock mcp [--server URL]                 airlock's MCP server for agents, over stdio
  airlock version                            print the version

Flags may come before or after arguments. Run "airlock COMMAND -h" for the
flags of a command; -h and --help print usage and exit 0.

Exit status: 0 done, 1 failed, 2 usage error; check also exits 3 when the
request is denied, held for approval or refused.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command runs one command with its arguments and returns the exit status.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// commands are airlock's commands by name.
var commands = map[string]command{
	"serve":     runServe,
	"check":     runCheck,
	"dev-token": runDevToken,
	"login":     runLogin,
	"policy":    runPolicy,
	"approvals": runApprovals,
	"sessions":  runSessions,
	"envoy":     runEnvoy,
	"bench":     runBench,
	"mcp":       runMCP,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := groupUsage(args, usage, stdout, stderr); done {
		return code
	}
	name, rest := args[0], args[1:]
	if cmd, ok := commands[name]; ok {
		return cmd(ctx, rest, stdout, stderr)
	}
	switch name {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", name, usage)
	return exitUsage
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		return fmt.Sprintf("airlock %s (%s)", v, info.GoVersion)
	}
	return "airlock " + v
}
