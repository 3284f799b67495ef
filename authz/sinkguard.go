package authz

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

// SinkGuard refuses, before policy, any agent request that touches the
// recorder's own sink (gs://BUCKET/PREFIX): the agent's injected credential
// may well have rights on that bucket, and a recording the recorded agent
// can read, rewrite or delete proves nothing. It covers object reads,
// writes, deletes, copies, rewrites, moves and composes whose source or
// destination is in the sink, lists whose prefix overlaps it, and every
// bucket-level operation on the bucket (delete, patch, IAM, ACLs,
// notifications, folders, restores), in the JSON API, the XML API
// (path-style and bucket-as-host, x-goog-copy-source and x-amz-copy-source)
// and its upload paths, and in each part of a batch. It reads the
// recognised operation (its bucket and object parameters); a storage
// request airlock cannot recognise is refused when it names the bucket
// anywhere in its host, path or body. Objects of the bucket outside the
// prefix stay governed by policy, but an upload whose object name airlock
// cannot read is refused.
type SinkGuard struct {
	bucket string // lower case
	prefix string // no leading or trailing "/"; empty guards the whole bucket
}

// NewSinkGuard guards the sink URL of recorder.sink. A sink that is not in
// Cloud Storage (file://) cannot be reached through the gateway: nil,
// which guards nothing.
func NewSinkGuard(sink string) *SinkGuard {
	rest, ok := strings.CutPrefix(sink, "gs://")
	if !ok {
		return nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil
	}
	return &SinkGuard{bucket: strings.ToLower(bucket), prefix: strings.Trim(prefix, "/")}
}

// RuleSinkGuard names the built-in rule in refusals, logs and recordings.
const RuleSinkGuard = "recorder-sink"

// Check returns why req touches the sink, a sentence for the agent, or ""
// when it does not.
func (g *SinkGuard) Check(rec gcp.Recognized, req Request) string {
	if g == nil {
		return ""
	}
	if rec.Parts != nil {
		for i, p := range rec.Parts {
			// Each part carries its own headers and body inside the batch.
			if why := g.check(p, p.Headers, p.Body, false); why != "" {
				return "part " + itoa(i+1) + " of the batch: " + why
			}
		}
		return ""
	}
	return g.check(rec, req.Headers, req.Body, req.BodyPartial)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// where names the guarded place for the agent.
func (g *SinkGuard) where() string {
	if g.prefix == "" {
		return "bucket " + g.bucket
	}
	return "gs://" + g.bucket + "/" + g.prefix + "/"
}

func (g *SinkGuard) isSink(bucket string) bool { return strings.EqualFold(bucket, g.bucket) }

// inSink reports whether an object name of the bucket lies in the sink.
func (g *SinkGuard) inSink(object string) bool {
	return g.prefix == "" || object == g.prefix || strings.HasPrefix(object, g.prefix+"/")
}

// overlaps reports whether a list prefix can return objects of the sink.
func (g *SinkGuard) overlaps(listPrefix string) bool {
	return g.prefix == "" || strings.HasPrefix(listPrefix, g.prefix+"/") || strings.HasPrefix(g.prefix+"/", listPrefix)
}

// objectsOf maps each bucket parameter to the object parameters that name
// objects of that bucket.
var objectsOf = map[string][]string{
	"bucket":            {"object", "sourceObject", "destinationObject"},
	"sourceBucket":      {"sourceObject"},
	"destinationBucket": {"destinationObject"},
}

func (g *SinkGuard) check(rec gcp.Recognized, headers map[string]string, body []byte, partial bool) string {
	op := rec.Operation
	if op.Service != "storage" {
		return ""
	}
	for _, h := range []string{"x-goog-copy-source", "x-amz-copy-source"} {
		if v := headers[h]; v != "" && g.copySourceInSink(v) {
			return "it copies from " + g.where() + " (" + h + ")"
		}
	}
	for key, objects := range objectsOf {
		bucket := op.Params[key]
		if bucket == "" || !g.isSink(bucket) {
			continue
		}
		if g.prefix == "" {
			return "it acts on " + g.where()
		}
		named := false
		for _, ok := range objects {
			// A sourceObject or destinationObject belongs to "bucket" only
			// when its own bucket parameter is absent.
			if key == "bucket" && ok != "object" && op.Params[strings.TrimSuffix(ok, "Object")+"Bucket"] != "" {
				continue
			}
			if o, has := op.Params[ok]; has {
				named = true
				if g.inSink(o) {
					return "it acts on " + g.where()
				}
			}
		}
		if why := g.bucketLevel(rec, key, named, headers, body, partial); why != "" {
			return why
		}
	}
	if op.Method == "" && op.Params["bucket"] == "" {
		return g.unknown(rec, body)
	}
	return ""
}

// bucketLevel judges an operation on the sink's bucket (with a prefix)
// from what it names beyond its object parameters.
func (g *SinkGuard) bucketLevel(rec gcp.Recognized, key string, named bool, headers map[string]string, body []byte, partial bool) string {
	switch rec.Operation.Method {
	case "storage.objects.list":
		prefixes := rec.Query["prefix"]
		if len(prefixes) > 1 || g.overlaps(first(prefixes)) {
			return "it lists objects of " + g.where()
		}
		return ""
	case "storage.objects.compose":
		if key != "destinationBucket" {
			return ""
		}
		names, ok := composeSources(body, partial)
		if !ok {
			return "it composes objects of the bucket that holds " + g.where() + " from sources airlock cannot read"
		}
		for _, n := range names {
			if g.inSink(n) {
				return "it composes from " + g.where()
			}
		}
		return ""
	case "storage.objects.insert":
		if named {
			return ""
		}
		names, ok := uploadNames(rec, headers, body, partial)
		if !ok {
			return "it uploads to the bucket that holds " + g.where() + " without naming the object in the URL (the name query parameter)"
		}
		for _, n := range names {
			if g.inSink(n) {
				return "it writes to " + g.where()
			}
		}
		return ""
	}
	if named {
		return ""
	}
	return "it acts on the bucket that holds " + g.where()
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// copySourceInSink reads an XML API copy source, "/BUCKET/OBJECT" with
// the object percent-encoded (and for x-amz, "?versionId=..." after it),
// as sent and wholly decoded: either reading in the sink is enough.
func (g *SinkGuard) copySourceInSink(v string) bool {
	v = strings.TrimSpace(v)
	readings := []string{v}
	if d, err := url.PathUnescape(v); err != nil {
		return strings.Contains(strings.ToLower(v), g.bucket)
	} else if d != v {
		readings = append(readings, d)
	}
	for _, r := range readings {
		bucket, object, _ := strings.Cut(strings.TrimPrefix(r, "/"), "/")
		if b, err := url.PathUnescape(bucket); err == nil {
			bucket = b
		}
		if !g.isSink(bucket) {
			continue
		}
		object, _, _ = strings.Cut(object, "?")
		decoded, err := url.PathUnescape(object)
		if err != nil || g.inSink(object) || g.inSink(decoded) {
			return true
		}
	}
	return false
}

// composeSources reads the source object names of a compose request body.
func composeSources(body []byte, partial bool) ([]string, bool) {
	if partial || len(body) == 0 {
		return nil, false
	}
	var req struct {
		SourceObjects []struct {
			Name string `json:"name"`
		} `json:"sourceObjects"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil, false
	}
	out := make([]string, 0, len(req.SourceObjects))
	for _, s := range req.SourceObjects {
		out = append(out, s.Name)
	}
	return out, true
}

// uploadNames reads every object name an insert may use: the name query
// parameter, and the name of the JSON metadata in the body (a resumable
// start, or the first part of a multipart upload). ok is false when the
// body may name one airlock cannot read.
func uploadNames(rec gcp.Recognized, headers map[string]string, body []byte, partial bool) ([]string, bool) {
	names := append([]string(nil), rec.Query["name"]...)
	if rec.Query["upload_id"] != nil {
		// A resumable upload under way: its object was named, and
		// checked, when the session was opened.
		return names, true
	}
	if len(body) == 0 {
		return names, len(names) > 0
	}
	if partial {
		return nil, false
	}
	mt, params, _ := mime.ParseMediaType(headers["content-type"])
	meta := body
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		p, err := mr.NextPart()
		if err != nil {
			return nil, false
		}
		if meta, err = io.ReadAll(io.LimitReader(p, 1<<20)); err != nil {
			return nil, false
		}
	} else if rec.Query["uploadType"] != nil && first(rec.Query["uploadType"]) == "media" {
		// The body is the object's content.
		return names, len(names) > 0
	}
	var m struct {
		Name *string `json:"name"`
	}
	if json.Unmarshal(meta, &m) != nil {
		// Not metadata: the content of an XML form or media upload.
		return names, len(names) > 0
	}
	if m.Name != nil {
		names = append(names, *m.Name)
	}
	return names, len(names) > 0
}

// unknown judges a storage request airlock could not recognise: refused
// when the bucket appears in its host, as a segment of its path, or in its
// body (a gRPC message names "projects/_/buckets/BUCKET").
func (g *SinkGuard) unknown(rec gcp.Recognized, body []byte) string {
	why := "it is a Cloud Storage request airlock does not recognise that names the bucket holding " + g.where()
	if strings.HasPrefix(rec.Host, g.bucket+".") {
		return why
	}
	for _, seg := range strings.Split(rec.Path, "/") {
		if s, err := url.PathUnescape(seg); err == nil && g.isSink(s) || g.isSink(seg) {
			return why
		}
	}
	// A body Envoy cut is read as far as it goes: a gRPC request names its
	// bucket in its first message.
	if bytes.Contains(bytes.ToLower(body), []byte(g.bucket)) {
		return why
	}
	return ""
}

// sinkRefused refuses a request that touches the recorder's sink: a
// built-in rule no policy can lift, so POLICY_DENIED (403), which tells the
// agent not to retry, rather than INVALID_REQUEST, which would say the
// request itself is malformed.
func sinkRefused(r *Result, why string) *Result {
	r.Decision = policies.Decision{Action: policies.Deny, Policy: "airlock", Rule: RuleSinkGuard,
		Message: "the request touches the session recordings of this gateway: " + why + ". Agents may not read, list, write, delete or reconfigure them; use another bucket or prefix"}
	return denied(r)
}
