package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// ErrNotExist is returned (wrapped) by Sink.Get for a missing object.
var ErrNotExist = errors.New("recorder: object does not exist")

// ErrExists is returned (wrapped) by Sink.Put when an object of that name
// already holds other bytes: a sink never replaces an object.
var ErrExists = errors.New("recorder: object already exists with other content")

// Sink stores recorded objects under slash-separated names relative to
// the sink's root (gs://BUCKET/PREFIX or file://DIR). Objects are written
// once and never replaced, so that a bucket retention policy (Bucket
// Lock) can hold them.
type Sink interface {
	// Put creates the whole object. An object of that name that already
	// holds exactly data is a success (a retried write); one that holds
	// other bytes is an error wrapping ErrExists.
	Put(ctx context.Context, name string, data []byte) error
	// Get reads a whole object; a missing object is ErrNotExist.
	Get(ctx context.Context, name string) ([]byte, error)
	// List returns the object names under prefix in lexical order. With
	// delim "/" it returns only the direct children: objects and, as
	// dirs, the sub-prefixes ending in "/".
	List(ctx context.Context, prefix, delim string) (objects, dirs []string, err error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// String names the sink as a URL.
	String() string
}

// SinkOptions tune OpenSink.
type SinkOptions struct {
	// StorageClient is used for gs:// sinks instead of a new client.
	StorageClient *storage.Client
	// Endpoint is a GCS endpoint (an emulator) for gs:// sinks; without
	// it the client honours STORAGE_EMULATOR_HOST.
	Endpoint string
}

// OpenSink opens gs://BUCKET/PREFIX or file://DIR.
func OpenSink(ctx context.Context, url string, opts SinkOptions) (Sink, error) {
	switch {
	case strings.HasPrefix(url, "file://"):
		dir := strings.TrimPrefix(url, "file://")
		if dir == "" {
			return nil, fmt.Errorf("recorder: sink %q names no directory", url)
		}
		return NewFileSink(dir)
	case strings.HasPrefix(url, "gs://"):
		rest := strings.TrimPrefix(url, "gs://")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("recorder: sink %q names no bucket", url)
		}
		client := opts.StorageClient
		if client == nil {
			copts := []option.ClientOption{storage.WithJSONReads()}
			if opts.Endpoint != "" {
				copts = append(copts, option.WithEndpoint(emulatorEndpoint(opts.Endpoint)), option.WithoutAuthentication())
			}
			var err error
			client, err = storage.NewClient(ctx, copts...)
			if err != nil {
				return nil, fmt.Errorf("recorder: sink %s: %w", url, err)
			}
		}
		return NewGCSSink(client, bucket, prefix), nil
	}
	return nil, fmt.Errorf("recorder: sink %q must be gs://BUCKET/PREFIX or file://DIR", url)
}

// emulatorEndpoint completes an emulator address ("http://host:4443") to
// the JSON API base the client expects.
func emulatorEndpoint(e string) string {
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	rest := e[strings.Index(e, "://")+3:]
	if !strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
		e = strings.TrimSuffix(e, "/") + "/storage/v1/"
	}
	return e
}

// FileSink stores objects as files under a directory; writes are atomic
// (temporary file, fsync, rename).
type FileSink struct {
	dir string
}

var _ Sink = (*FileSink)(nil)

// NewFileSink opens (creating) a directory sink.
func NewFileSink(dir string) (*FileSink, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("recorder: sink %s: %w", dir, err)
	}
	return &FileSink{dir: dir}, nil
}

// Dir is the sink's directory.
func (s *FileSink) Dir() string { return s.dir }

func (s *FileSink) path(name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" || clean != "/"+name {
		return "", fmt.Errorf("recorder: object name %q is not clean", name)
	}
	return filepath.Join(s.dir, filepath.FromSlash(name)), nil
}

// Put implements Sink: the file is written and synced under a temporary
// name, then linked to its name, which fails when that name exists.
func (s *FileSink) Put(ctx context.Context, name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recorder: put %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("recorder: put %s: %w", name, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return fmt.Errorf("recorder: put %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Link(tmp, p)
		if errors.Is(werr, fs.ErrExist) {
			return sameContent(name, data, func() ([]byte, error) { return os.ReadFile(p) })
		}
	}
	if werr != nil {
		return fmt.Errorf("recorder: put %s: %w", name, werr)
	}
	return nil
}

// sameContent is Put's answer when the object exists: success when it
// holds data, else ErrExists.
func sameContent(name string, data []byte, read func() ([]byte, error)) error {
	have, err := read()
	if err != nil {
		return fmt.Errorf("recorder: put %s: it exists and cannot be read: %w", name, err)
	}
	if !bytes.Equal(have, data) {
		return fmt.Errorf("recorder: put %s: %w", name, ErrExists)
	}
	return nil
}

// Get implements Sink.
func (s *FileSink) Get(ctx context.Context, name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("recorder: get %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: get %s: %w", name, err)
	}
	return b, nil
}

// List implements Sink.
func (s *FileSink) List(ctx context.Context, prefix, delim string) ([]string, []string, error) {
	// Walk from the deepest directory named by the prefix.
	base := prefix
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[:i]
	} else {
		base = ""
	}
	root := filepath.Join(s.dir, filepath.FromSlash(base))
	var objects []string
	dirs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == root {
				return nil
			}
			dirName := name + "/"
			if !strings.HasPrefix(dirName, prefix) && !strings.HasPrefix(prefix, dirName) {
				return fs.SkipDir
			}
			if delim == "/" && strings.HasPrefix(dirName, prefix) {
				dirs[dirName] = true
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(path.Base(name), ".put-") || !strings.HasPrefix(name, prefix) {
			return nil
		}
		objects = append(objects, name)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("recorder: list %s: %w", prefix, err)
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(objects)
	sort.Strings(out)
	return objects, out, nil
}

// Delete implements Sink.
func (s *FileSink) Delete(ctx context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recorder: delete %s: %w", name, err)
	}
	// Remove emptied parent directories up to the root.
	for dir := filepath.Dir(p); dir != s.dir && strings.HasPrefix(dir, s.dir); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// String implements Sink.
func (s *FileSink) String() string { return "file://" + s.dir }

// GCSSink stores objects in a Cloud Storage bucket under a prefix.
type GCSSink struct {
	client *storage.Client
	bucket string
	prefix string
}

var _ Sink = (*GCSSink)(nil)

// NewGCSSink returns a sink writing to gs://bucket/prefix.
func NewGCSSink(client *storage.Client, bucket, prefix string) *GCSSink {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &GCSSink{client: client, bucket: bucket, prefix: prefix}
}

// Put implements Sink. Uploads are single requests (no resumable session)
// that create the object only if it does not exist (ifGenerationMatch=0),
// retried by the client on transient errors; an object that exists is
// compared with data.
func (s *GCSSink) Put(ctx context.Context, name string, data []byte) error {
	obj := s.client.Bucket(s.bucket).Object(s.prefix + name).If(storage.Conditions{DoesNotExist: true}).Retryer(storage.WithPolicy(storage.RetryAlways))
	w := obj.NewWriter(ctx)
	w.ChunkSize = 0
	switch {
	case strings.HasSuffix(name, ".gz"):
		w.ContentType = "application/gzip"
	case strings.HasSuffix(name, ".json"):
		w.ContentType = "application/json"
	}
	_, err := io.Copy(w, bytes.NewReader(data))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
		return sameContent(fmt.Sprintf("gs://%s/%s%s", s.bucket, s.prefix, name), data, func() ([]byte, error) { return s.Get(ctx, name) })
	}
	if err != nil {
		return fmt.Errorf("recorder: put gs://%s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	return nil
}

// Get implements Sink.
func (s *GCSSink) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := s.client.Bucket(s.bucket).Object(s.prefix + name).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("recorder: get gs://%s/%s%s: %w", s.bucket, s.prefix, name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: get gs://%s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("recorder: get gs://%s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	return b, nil
}

// List implements Sink.
func (s *GCSSink) List(ctx context.Context, prefix, delim string) ([]string, []string, error) {
	q := &storage.Query{Prefix: s.prefix + prefix, Delimiter: delim}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, nil, fmt.Errorf("recorder: list %s: %w", prefix, err)
	}
	it := s.client.Bucket(s.bucket).Objects(ctx, q)
	var objects, dirs []string
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("recorder: list gs://%s/%s%s: %w", s.bucket, s.prefix, prefix, err)
		}
		if a.Prefix != "" {
			dirs = append(dirs, strings.TrimPrefix(a.Prefix, s.prefix))
			continue
		}
		objects = append(objects, strings.TrimPrefix(a.Name, s.prefix))
	}
	sort.Strings(objects)
	sort.Strings(dirs)
	return objects, dirs, nil
}

// Delete implements Sink.
func (s *GCSSink) Delete(ctx context.Context, name string) error {
	err := s.client.Bucket(s.bucket).Object(s.prefix + name).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("recorder: delete gs://%s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	return nil
}

// Retention reads the bucket's retention policy (storage.buckets.get).
func (s *GCSSink) Retention(ctx context.Context) (Retention, error) {
	a, err := s.client.Bucket(s.bucket).Attrs(ctx)
	if err != nil {
		return Retention{}, fmt.Errorf("recorder: bucket gs://%s: %w", s.bucket, err)
	}
	if a.RetentionPolicy == nil {
		return Retention{}, nil
	}
	return Retention{Period: a.RetentionPolicy.RetentionPeriod, Locked: a.RetentionPolicy.IsLocked}, nil
}

// String implements Sink.
func (s *GCSSink) String() string {
	return "gs://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}
