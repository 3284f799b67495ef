// Package yamlpos finds the line a YAML syntax error is on.
//
// The YAML parser reports a syntax error at the line where the enclosing
// block began, often several lines above the mistake. The wrong line is
// the first one that a parse of the lines before it cannot absorb: the
// longest prefix of the document that still parses ends just above it.
package yamlpos

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxLines bounds the search; longer documents keep the parser's line.
const maxLines = 5000

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Locate returns the line (1-based) of the syntax error err that parsing
// data produced, and the parser's message without its "yaml: line N: "
// prefix. line is 0 when err carries no position.
func Locate(data []byte, err error) (line int, msg string) {
	msg = err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else if rest, ok := strings.CutPrefix(msg, "yaml: "); ok {
		// The first line's errors carry no number.
		line, msg = 1, rest
	} else {
		return 0, msg
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxLines {
		return line, msg
	}
	for k := len(lines) - 1; k >= 0; k-- {
		if parses(bytes.Join(lines[:k], nil)) {
			if k+1 > len(lines) {
				break
			}
			return k + 1, msg
		}
	}
	return line, msg
}

// parses reports whether every document of data parses.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
