package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses shared by every command.
const (
	exitOK    = 0 // done; for check: allowed
	exitFail  = 1 // the command ran and failed (an error, a failed test, a problem found)
	exitUsage = 2 // the command line is wrong: a bad flag, a missing argument
	exitNo    = 3 // check only: denied, held for approval or refused
)

// exitCodes is the exit-status paragraph of commands that have no status
// of their own.
const exitCodes = `
Exit status: 0 done, 1 failed, 2 usage error.
`

// newFlagSet returns the flag set of "airlock NAME". usage is the command's
// synopsis, description and exit statuses; -h prints it followed by the
// flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("airlock "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, strings.TrimLeft(usage, "\n"))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args into fs, with flags before, between or after the
// positional arguments ("--" ends the flags) and returns the positional
// arguments. When ok is false the caller returns code: 0 after -h or
// --help printed the usage on stdout, 2 after a bad flag was reported on
// stderr with a pointer to -h.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, code int, ok bool) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(interleave(fs, args))
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(out)
		return nil, exitOK, false
	case err != nil:
		fmt.Fprintf(out, "%s: %v\nRun '%s -h' for usage.\n", fs.Name(), err, fs.Name())
		return nil, exitUsage, false
	}
	return fs.Args(), exitOK, true
}

// interleave moves the flags of args (and the values of non-boolean
// flags) before the positional arguments, which follow a "--".
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), pos...)
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// groupUsage handles the first argument of a command with subcommands
// ("airlock policy", "airlock sessions", ...): with no argument it prints
// usage on stderr and returns 2; with -h, --help or help it prints usage
// on stdout and returns 0.
func groupUsage(args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	if len(args) == 0 {
		fmt.Fprint(stderr, strings.TrimLeft(usage, "\n"))
		return exitUsage, true
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, strings.TrimLeft(usage, "\n"))
		return exitOK, true
	}
	return 0, false
}

// errorf prints one error line with a single "airlock CMD: " prefix: a
// prefix the error already carries (a package's "recorder: ") is not
// repeated.
func errorf(stderr io.Writer, cmd string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(stderr, "airlock %s: %s\n", cmd, stripPrefixes(msg))
}

// stripPrefixes removes the package prefixes ("recorder: ", "approvals: ")
// that wrapped errors repeat, keeping the message after the first.
func stripPrefixes(msg string) string {
	for _, p := range []string{"airlock: ", "approvals: ", "recorder: ", "policies: ", "config: ", "identity: ", "masking: ", "envoy: ", "console: ", "resources: ", "gcp: "} {
		first := strings.Index(msg, p)
		if first < 0 {
			continue
		}
		head := msg[:first+len(p)]
		tail := strings.ReplaceAll(msg[first+len(p):], p, "")
		msg = head + tail
		if first == 0 {
			msg = msg[len(p):]
		}
	}
	return msg
}
