// Package schemagen compiles the request-body schemas of Google's Discovery
// documents into the compact table that package gcp embeds to read request
// bodies as Google's JSON parsers do (field spellings, quoted scalars).
//
// The table is gzipped JSON lines, one GA API document per line (see
// [Doc]), holding for each method that takes a request body the name of its
// schema, and every schema reachable from those, reduced to what reading a
// body needs: types, int64-style formats, enum flags, properties, items and
// map values.
package schemagen

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/airlockhq/airlock/gcp/internal/catalogen"
)

// Doc is one Discovery document's request schemas.
type Doc struct {
	API     string             `json:"api"`
	Version string             `json:"version"`
	Methods map[string]string  `json:"methods"` // method id -> request schema name
	Schemas map[string]*Schema `json:"schemas"`
}

// Schema is a Discovery JSON schema, reduced.
type Schema struct {
	Ref    string             `json:"r,omitempty"` // another schema of the document
	Type   string             `json:"t,omitempty"` // object, array, string, integer, number, boolean, any
	Format string             `json:"f,omitempty"` // int64, uint64, ... where it changes how a value is written
	Enum   bool               `json:"e,omitempty"` // the value is one of named enum values
	Props  map[string]*Schema `json:"p,omitempty"` // object properties
	Items  *Schema            `json:"i,omitempty"` // array items
	Map    *Schema            `json:"a,omitempty"` // additionalProperties: map values
}

type rawSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Format               string                `json:"format"`
	Enum                 []string              `json:"enum"`
	Properties           map[string]*rawSchema `json:"properties"`
	Items                *rawSchema            `json:"items"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
}

type rawMethod struct {
	ID      string `json:"id"`
	Request *struct {
		Ref string `json:"$ref"`
	} `json:"request"`
}

type rawResource struct {
	Methods   map[string]*rawMethod   `json:"methods"`
	Resources map[string]*rawResource `json:"resources"`
}

type rawDoc struct {
	Name      string                  `json:"name"`
	Version   string                  `json:"version"`
	Methods   map[string]*rawMethod   `json:"methods"`
	Resources map[string]*rawResource `json:"resources"`
	Schemas   map[string]*rawSchema   `json:"schemas"`
}

// Generate reads the GA documents among files. A method id may appear in
// several versions of an API (run v1 and v2 both have
// run.projects.locations.services.create): lookups go by version and id.
func Generate(files []string) ([]Doc, error) {
	var docs []Doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("schemagen: read %s: %w", f, err)
		}
		var d rawDoc
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("schemagen: %s: %w", f, err)
		}
		if !catalogen.Included(d.Name, d.Version) {
			continue
		}
		out := Doc{API: d.Name, Version: d.Version, Methods: map[string]string{}, Schemas: map[string]*Schema{}}
		var walk func(ms map[string]*rawMethod, rs map[string]*rawResource)
		walk = func(ms map[string]*rawMethod, rs map[string]*rawResource) {
			for _, m := range ms {
				if m.Request != nil && m.Request.Ref != "" && m.ID != "" {
					out.Methods[m.ID] = m.Request.Ref
				}
			}
			for _, r := range rs {
				walk(r.Methods, r.Resources)
			}
		}
		walk(d.Methods, d.Resources)
		if len(out.Methods) == 0 {
			continue
		}
		var need []string
		for _, ref := range out.Methods {
			need = append(need, ref)
		}
		for len(need) > 0 {
			name := need[len(need)-1]
			need = need[:len(need)-1]
			if _, done := out.Schemas[name]; done {
				continue
			}
			raw := d.Schemas[name]
			if raw == nil {
				return nil, fmt.Errorf("schemagen: %s %s: schema %q is referenced but not defined", d.Name, d.Version, name)
			}
			s, refs, err := reduce(raw)
			if err != nil {
				return nil, fmt.Errorf("schemagen: %s %s schema %s: %w", d.Name, d.Version, name, err)
			}
			out.Schemas[name] = s
			need = append(need, refs...)
		}
		docs = append(docs, out)
	}
	return docs, nil
}

// reduce keeps what reading a body needs and lists the schemas s refers to.
func reduce(r *rawSchema) (*Schema, []string, error) {
	if r.Ref != "" {
		return &Schema{Ref: r.Ref}, []string{r.Ref}, nil
	}
	s := &Schema{Type: r.Type, Enum: len(r.Enum) > 0}
	switch r.Format {
	case "int64", "uint64":
		s.Format = r.Format
	}
	var refs []string
	add := func(c *rawSchema) (*Schema, error) {
		cs, cr, err := reduce(c)
		refs = append(refs, cr...)
		return cs, err
	}
	if len(r.Properties) > 0 {
		s.Props = map[string]*Schema{}
		for k, p := range r.Properties {
			cs, err := add(p)
			if err != nil {
				return nil, nil, err
			}
			s.Props[k] = cs
		}
	}
	if r.Items != nil {
		cs, err := add(r.Items)
		if err != nil {
			return nil, nil, err
		}
		s.Items = cs
	}
	if len(r.AdditionalProperties) > 0 && r.AdditionalProperties[0] == '{' {
		var ap rawSchema
		if err := json.Unmarshal(r.AdditionalProperties, &ap); err != nil {
			return nil, nil, fmt.Errorf("additionalProperties: %w", err)
		}
		cs, err := add(&ap)
		if err != nil {
			return nil, nil, err
		}
		s.Map = cs
	}
	return s, refs, nil
}

// Index is the first line of the table: where each method's request
// schema is, so that a reader decodes only the document it needs.
type Index struct {
	// Methods maps "VERSION METHOD-ID" (a method id may appear in several
	// versions of an API) to its document line (1 is the first document)
	// and schema name.
	Methods map[string]IndexEntry `json:"methods"`
}

// IndexEntry locates one method's request schema.
type IndexEntry struct {
	Doc    int    `json:"d"`
	Schema string `json:"s"`
}

// tableDoc is a document line of the table: its schemas only.
type tableDoc struct {
	API     string             `json:"api"`
	Version string             `json:"version"`
	Schemas map[string]*Schema `json:"schemas"`
}

// EncodeLines writes the table as JSON lines: the Index, then one line per
// document, sorted by API and version so that the output is stable.
func EncodeLines(w io.Writer, docs []Doc) error {
	sort.SliceStable(docs, func(i, j int) bool {
		if docs[i].API != docs[j].API {
			return docs[i].API < docs[j].API
		}
		return docs[i].Version < docs[j].Version
	})
	idx := Index{Methods: map[string]IndexEntry{}}
	var lines []tableDoc
	for _, d := range docs {
		if len(d.Methods) == 0 {
			continue
		}
		lines = append(lines, tableDoc{API: d.API, Version: d.Version, Schemas: d.Schemas})
		for id, schema := range d.Methods {
			idx.Methods[d.Version+" "+id] = IndexEntry{Doc: len(lines), Schema: schema}
		}
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(idx); err != nil {
		return err
	}
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

// Encode writes docs as gzipped JSON lines (see EncodeLines).
func Encode(docs []Doc) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := EncodeLines(zw, docs); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
