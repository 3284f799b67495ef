package policies

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"gopkg.in/yaml.v3"
)

// compile type-checks one expression and builds its program.
func (l *loader) compile(n *yaml.Node, pol, rule, what string) *expr {
	src, ok := l.nonEmpty(n, pol, rule, what)
	if !ok {
		return nil
	}
	checked, iss := l.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			l.celProblem(n, pol, rule, what, e)
		}
		return nil
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		l.problem(n, pol, rule, "%s must be a bool expression, but it gives %s", what, checked.OutputType())
		return nil
	}
	loops := loopsOverInput(checked.NativeRep().Expr())
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if loops {
		// Expressions whose loops the request sizes watch its context.
		opts = append(opts, cel.InterruptCheckFrequency(64))
	}
	prg, err := l.env.Program(checked, opts...)
	if err != nil {
		l.problem(n, pol, rule, "%s: %v", what, err)
		return nil
	}
	root := checked.NativeRep().Expr()
	var uses uint64
	for _, ref := range checked.NativeRep().ReferenceMap() {
		if slot := slotOf(ref.Name); slot >= 0 {
			uses |= 1 << slot
		}
	}
	l.uses |= uses
	if uses>>varResourceKind != 0 && l.resourceUse == "" {
		l.resourceUse = strings.TrimSuffix(Problem{File: l.file, Line: n.Line, Column: n.Column, Policy: pol, Rule: rule}.String(), ": ")
	}
	l.collectMethodLiterals(checked.NativeRep(), n, pol, rule)
	return &expr{src: src, prg: prg, loops: loops, methods: methodIndex(root), services: literalIndex(root, "gcp.service")}
}

// celProblem places a CEL error at its position in the file.
func (l *loader) celProblem(n *yaml.Node, pol, rule, what string, e *common.Error) {
	celLine, celCol := 0, 0
	if e.Location != nil {
		celLine, celCol = e.Location.Line(), e.Location.Column()
	}
	msg := explainCELError(n.Value, celLine, celCol, e.Message)
	line, col, inExpr := l.filePosition(n, celLine, celCol)
	if inExpr != "" {
		msg += " " + inExpr
	}
	l.problems = append(l.problems, Problem{File: l.file, Line: line, Column: col, Policy: pol, Rule: rule, Msg: what + ": " + msg})
}

// filePosition maps a position inside the expression of scalar n (1-based
// line, 0-based column; line 0 when unknown) to a line and column of the
// file. Where the scalar's layout does not allow it, it gives the scalar's
// own position and says where in the expression, as "(expression line L,
// column C)".
func (l *loader) filePosition(n *yaml.Node, celLine, celCol int) (line, col int, inExpr string) {
	line, col = n.Line, n.Column
	switch {
	case celLine < 1:
	case (n.Style == 0 || n.Style == yaml.SingleQuotedStyle || n.Style == yaml.DoubleQuotedStyle) && l.onOneLine(n):
		col = n.Column + celCol
		if n.Style != 0 {
			col++
		}
	case n.Style == yaml.LiteralStyle:
		line = n.Line + celLine
		col = l.blockIndent(n) + celCol + 1
	default:
		inExpr = fmt.Sprintf("(expression line %d, column %d)", celLine, celCol+1)
	}
	return line, col, inExpr
}

// onOneLine reports whether a flow scalar's text sits on its first line, so
// that a column inside the expression maps to a column of the file.
func (l *loader) onOneLine(n *yaml.Node) bool {
	if strings.Contains(n.Value, "\n") {
		return false
	}
	if l.lines == nil {
		l.lines = strings.Split(string(l.data), "\n")
	}
	if n.Line < 1 || n.Line > len(l.lines) {
		return false
	}
	rest := []rune(l.lines[n.Line-1])
	if n.Column-1 > len(rest) {
		return false
	}
	rest = rest[n.Column-1:]
	if n.Style != 0 {
		rest = rest[min(1, len(rest)):]
	}
	return len(rest) >= len([]rune(n.Value))
}

// blockIndent finds the indentation of a literal block scalar's content.
func (l *loader) blockIndent(n *yaml.Node) int {
	if l.lines == nil {
		l.lines = strings.Split(string(l.data), "\n")
	}
	first, _, _ := strings.Cut(n.Value, "\n")
	for i := n.Line; i < len(l.lines); i++ { // n.Line is the header line; content follows
		text := l.lines[i]
		if strings.TrimSpace(text) == "" {
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " "))
		extra := len(first) - len(strings.TrimLeft(first, " "))
		if indent >= extra {
			return indent - extra
		}
		return indent
	}
	return n.Column
}

// methodIndex returns the gcp.method values that a top-level conjunct
// `gcp.method == "lit"` or `gcp.method in ["a", "b"]` requires, or nil when
// the expression has no such conjunct. A false conjunct makes a CEL
// conjunction false whatever the other conjuncts give (errors included),
// and gcp.method is always a string, so skipping the rule for other methods
// is exact.
func methodIndex(e celast.Expr) []string { return literalIndex(e, "gcp.method") }

// literalIndex is methodIndex for any string variable.
func literalIndex(e celast.Expr, variable string) []string {
	if e.Kind() != celast.CallKind {
		return nil
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case operators.LogicalAnd:
		var best []string
		for _, a := range args {
			if m := literalIndex(a, variable); m != nil && (best == nil || len(m) < len(best)) {
				best = m
			}
		}
		return best
	case operators.Equals:
		if len(args) != 2 {
			return nil
		}
		if isIdent(args[0], variable) {
			if s, ok := stringLit(args[1]); ok {
				return []string{s}
			}
		}
		if isIdent(args[1], variable) {
			if s, ok := stringLit(args[0]); ok {
				return []string{s}
			}
		}
	case operators.In:
		if len(args) != 2 || !isIdent(args[0], variable) || args[1].Kind() != celast.ListKind {
			return nil
		}
		list := args[1].AsList()
		if len(list.OptionalIndices()) > 0 {
			return nil
		}
		out := []string{}
		for _, el := range list.Elements() {
			s, ok := stringLit(el)
			if !ok {
				return nil
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
}

// loopsOverInput reports whether an expression loops (all, exists, map,
// filter and the like) over anything but a list or map written in the
// expression itself: over request data, a function's result or another
// loop's variable, whose length the request may choose. Such an
// expression is evaluated under the request's deadline, so that it can be
// interrupted. A loop over a literal is bounded by the policy's own text,
// and the interruptible evaluation costs a context per expression.
func loopsOverInput(e celast.Expr) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() != celast.ComprehensionKind {
			return
		}
		switch x.AsComprehension().IterRange().Kind() {
		case celast.ListKind, celast.MapKind:
		default:
			found = true
		}
	}))
	return found
}

func isIdent(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

var undeclaredRE = regexp.MustCompile(`^undeclared reference to '([A-Za-z_][A-Za-z0-9_]*)' \(in container ''\)$`)

// explainCELError rewrites CEL's report of an unknown variable so that it
// names the whole dotted name written and the closest known variable.
func explainCELError(src string, line, col int, msg string) string {
	m := undeclaredRE.FindStringSubmatch(msg)
	if m == nil {
		return strings.TrimSuffix(msg, " (in container '')")
	}
	name := m[1]
	lines := strings.Split(src, "\n")
	if line >= 1 && line <= len(lines) {
		text := []rune(lines[line-1])
		if col >= 0 && col < len(text) {
			end := col
			for end < len(text) && (text[end] == '.' || text[end] == '_' || unicode.IsLetter(text[end]) || unicode.IsDigit(text[end])) {
				end++
			}
			if w := strings.TrimRight(string(text[col:end]), "."); strings.HasPrefix(w, name) {
				name = w
			}
		}
	}
	out := fmt.Sprintf("unknown variable %s", name)
	if s := closestVariable(name); s != "" {
		out += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return out
}

// closestVariable finds a declared variable within a small edit distance of
// name, or that name is a field of.
func closestVariable(name string) string {
	best, bestDist := "", 3
	for _, v := range Variables {
		cand := name
		if len(name) > len(v.Name) && strings.HasPrefix(name, v.Name+".") {
			continue
		}
		// Compare as many segments as the variable has.
		if parts := strings.Split(name, "."); len(parts) > strings.Count(v.Name, ".")+1 {
			cand = strings.Join(parts[:strings.Count(v.Name, ".")+1], ".")
		}
		if d := editDistance(cand, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// MethodLiteral is a string an expression compares gcp.method with: exactly
// (==, !=, in), or as a prefix, suffix or substring (startsWith, endsWith,
// contains). Lint checks each against the catalog, since a rule on a
// method that does not exist never matches.
type MethodLiteral struct {
	Value string
	// Kind is "exact", "prefix", "suffix" or "contains".
	Kind string
	// At locates the literal (File, Line, Column, Policy, Rule).
	At Problem
}

// collectMethodLiterals records the gcp.method comparisons of an expression.
func (l *loader) collectMethodLiterals(a *celast.AST, n *yaml.Node, pol, rule string) {
	add := func(lit celast.Expr, kind string) {
		s, ok := stringLit(lit)
		if !ok {
			return
		}
		loc := a.SourceInfo().GetStartLocation(lit.ID())
		line, col, _ := l.filePosition(n, loc.Line(), loc.Column())
		l.methodLits = append(l.methodLits, MethodLiteral{Value: s, Kind: kind,
			At: Problem{File: l.file, Line: line, Column: col, Policy: pol, Rule: rule}})
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.Equals, operators.NotEquals:
			if len(args) == 2 && isIdent(args[0], "gcp.method") {
				add(args[1], "exact")
			} else if len(args) == 2 && isIdent(args[1], "gcp.method") {
				add(args[0], "exact")
			}
		case operators.In:
			if len(args) == 2 && isIdent(args[0], "gcp.method") && args[1].Kind() == celast.ListKind {
				for _, el := range args[1].AsList().Elements() {
					add(el, "exact")
				}
			}
		case "startsWith", "endsWith", "contains":
			if call.IsMemberFunction() && isIdent(call.Target(), "gcp.method") && len(args) == 1 {
				add(args[0], map[string]string{"startsWith": "prefix", "endsWith": "suffix", "contains": "contains"}[call.FunctionName()])
			}
		}
	}))
}
