package authz

// MetadataNamespace is the Envoy dynamic-metadata namespace under which the
// ext_authz filter stores what airlock returns in CheckResponse.dynamic_metadata.
// The ext_proc filter must forward it (metadata_options.forwarding_namespaces.untyped).
const MetadataNamespace = "envoy.filters.http.ext_authz"

// Metadata is what an allowed Check hands to later filters (ext_proc, the
// recorder) through Envoy dynamic metadata.
type Metadata struct {
	RequestID string
	SessionID string
	Subject   string
	Actor     string
	GCPMethod string
	Decision  string
	Rules     []string
	// Masking lists the masking rules selected for this request; empty means
	// the default profile applies.
	Masking []MaskingSpec
}

// MaskingSpec is one selected masking rule, self-contained so that any
// ext_proc replica can apply it.
type MaskingSpec struct {
	Policy    string
	Name      string
	Fields    []string
	Detectors []string
}

// ToMap renders the metadata as the JSON-like map placed in a
// google.protobuf.Struct.
func (m Metadata) ToMap() map[string]any {
	rules := make([]any, len(m.Rules))
	for i, r := range m.Rules {
		rules[i] = r
	}
	masking := make([]any, len(m.Masking))
	for i, s := range m.Masking {
		masking[i] = map[string]any{
			"policy":    s.Policy,
			"name":      s.Name,
			"fields":    anyStrings(s.Fields),
			"detectors": anyStrings(s.Detectors),
		}
	}
	return map[string]any{
		"request_id": m.RequestID,
		"session_id": m.SessionID,
		"subject":    m.Subject,
		"actor":      m.Actor,
		"gcp_method": m.GCPMethod,
		"decision":   m.Decision,
		"rules":      rules,
		"masking":    masking,
	}
}

// MetadataFromMap reads what ToMap wrote (after a round trip through a
// protobuf Struct). Unknown or mistyped fields are ignored.
func MetadataFromMap(v map[string]any) Metadata {
	var m Metadata
	m.RequestID, _ = v["request_id"].(string)
	m.SessionID, _ = v["session_id"].(string)
	m.Subject, _ = v["subject"].(string)
	m.Actor, _ = v["actor"].(string)
	m.GCPMethod, _ = v["gcp_method"].(string)
	m.Decision, _ = v["decision"].(string)
	m.Rules = stringList(v["rules"])
	if list, ok := v["masking"].([]any); ok {
		for _, item := range list {
			e, ok := item.(map[string]any)
			if !ok {
				continue
			}
			var s MaskingSpec
			s.Policy, _ = e["policy"].(string)
			s.Name, _ = e["name"].(string)
			s.Fields = stringList(e["fields"])
			s.Detectors = stringList(e["detectors"])
			m.Masking = append(m.Masking, s)
		}
	}
	return m
}

func anyStrings(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

func stringList(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
