package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// LoadOptions tune how a policy set is loaded.
type LoadOptions struct {
	// KnownDetector reports whether a built-in detector of that name exists.
	// Nil accepts any detector name.
	KnownDetector func(name string) bool
	// CheckField validates a masking field path (the masking package's
	// syntax); nil accepts any non-empty path.
	CheckField func(path string) error
}

// Problem is one thing wrong with a policy file.
type Problem struct {
	File string
	// Line and Column are 1-based; zero when the problem concerns the whole file.
	Line, Column int
	// Policy and Rule name where the problem is, when known.
	Policy, Rule string
	Msg          string
}

// String formats the problem as "file:line:col: policy P rule R: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Policy != "" {
		b.WriteString("policy ")
		b.WriteString(p.Policy)
		if p.Rule != "" {
			b.WriteString(" rule ")
			b.WriteString(p.Rule)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError lists every problem found while loading a policy set.
type LoadError struct {
	Problems []Problem
}

// Error lists each problem on its own line.
func (e *LoadError) Error() string {
	if len(e.Problems) == 1 {
		return "policies: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policies: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// Source is the content of one policy file.
type Source struct {
	// Name is the file name used in problems and Files.
	Name string
	Data []byte
}

// Load reads the policy files at paths (files, or folders whose *.yaml and
// *.yml files are read, not recursively) and compiles them. Files are taken
// in path order. A failure returns a *LoadError.
func Load(paths ...string) (*Set, error) {
	return LoadWith(LoadOptions{}, paths...)
}

// LoadWith is Load with options.
func LoadWith(opts LoadOptions, paths ...string) (*Set, error) {
	srcs, problems := readPaths(paths)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	return LoadSources(opts, srcs...)
}

// LoadFS loads the *.yaml and *.yml files directly inside dir of fsys, for
// example an embedded set such as examples.FS with dir ".".
func LoadFS(opts LoadOptions, fsys fs.FS, dir string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{File: dir, Msg: err.Error()}}}
	}
	var srcs []Source
	for _, e := range entries {
		if e.IsDir() || !isPolicyFile(e.Name()) {
			continue
		}
		name := path.Join(dir, e.Name())
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, &LoadError{Problems: []Problem{{File: name, Msg: err.Error()}}}
		}
		srcs = append(srcs, Source{Name: name, Data: data})
	}
	if len(srcs) == 0 {
		return nil, &LoadError{Problems: []Problem{{File: dir, Msg: "no policy files (*.yaml, *.yml) found"}}}
	}
	return LoadSources(opts, srcs...)
}

func isPolicyFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// policyFiles lists the policy files that paths name, sorted.
func policyFiles(paths []string) ([]string, []Problem) {
	if len(paths) == 0 {
		return nil, []Problem{{File: "(none)", Msg: "no policy paths given"}}
	}
	var files []string
	var problems []Problem
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			problems = append(problems, Problem{File: p, Msg: errText(err)})
			continue
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			problems = append(problems, Problem{File: p, Msg: errText(err)})
			continue
		}
		found := 0
		for _, e := range entries {
			if !isPolicyFile(e.Name()) {
				continue
			}
			full := filepath.Join(p, e.Name())
			// Follow symbolic links (Kubernetes ConfigMap volumes use them).
			fst, err := os.Stat(full)
			if err != nil {
				problems = append(problems, Problem{File: full, Msg: errText(err)})
				continue
			}
			if fst.IsDir() {
				continue
			}
			files = append(files, full)
			found++
		}
		if found == 0 {
			problems = append(problems, Problem{File: p, Msg: "no policy files (*.yaml, *.yml) found"})
		}
	}
	sort.Strings(files)
	files = dedupe(files)
	return files, problems
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i > 0 && v == s[i-1] {
			continue
		}
		out = append(out, v)
	}
	return out
}

func readPaths(paths []string) ([]Source, []Problem) {
	files, problems := policyFiles(paths)
	srcs := make([]Source, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			problems = append(problems, Problem{File: f, Msg: errText(err)})
			continue
		}
		srcs = append(srcs, Source{Name: f, Data: data})
	}
	return srcs, problems
}

// errText drops the path that os errors repeat, since problems already name it.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// LoadSources compiles policy files given by content, in the order given.
func LoadSources(opts LoadOptions, srcs ...Source) (*Set, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	l := &loader{opts: opts, env: env}
	set := &Set{digest: sourcesDigest(srcs)}
	for _, src := range srcs {
		set.files = append(set.files, src.Name)
		l.file = src.Name
		l.data = src.Data
		l.parseFile()
	}
	if len(srcs) == 0 {
		l.problems = append(l.problems, Problem{File: "(none)", Msg: "no policy files given"})
	}
	l.validateSet()
	if len(l.problems) > 0 {
		return nil, &LoadError{Problems: l.problems}
	}
	set.policies = l.policies
	set.detectors = l.detectors
	set.uses = l.uses
	set.methodLits = l.methodLits
	set.resourceUse = l.resourceUse
	for _, p := range l.policies {
		set.tests = append(set.tests, p.tests...)
	}
	return set, nil
}
