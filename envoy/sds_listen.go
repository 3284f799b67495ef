package envoy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/airlockhq/airlock/config"
)

// SDSSocketMode is the mode of listen.sds's Unix socket: its owner and
// group may connect (Envoy runs as the same user or group), nobody else.
const SDSSocketMode = 0o660

// ListenSDS binds listen.sds: a Unix domain socket for unix:///PATH (a
// stale socket left by a crash is replaced; a live one, or any other file,
// is an error), else TCP.
func ListenSDS(addr string) (net.Listener, error) {
	if !config.IsUnixAddr(addr) {
		return net.Listen("tcp", addr)
	}
	path := config.UnixPath(addr)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process serves on this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket is created with the umask's mode, which lets nobody but its
	// owner connect; this adds the group.
	if err := os.Chmod(path, SDSSocketMode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// SDSServerTLS is the TLS configuration of an SDS listener that requires
// client certificates signed by the CA bundle in clientCAFile (mTLS). The
// three files are read again when one of them changes, so a rotated
// certificate is served without a restart; a rotation that fails to load
// keeps the previous files and is logged.
func SDSServerTLS(certFile, keyFile, clientCAFile string, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &tlsReloader{files: []string{certFile, keyFile, clientCAFile}, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2"},
		GetConfigForClient: r.config,
	}, nil
}

// tlsReloader holds the server TLS configuration built from files and
// rebuilds it when their modification times change.
type tlsReloader struct {
	files []string // cert, key, client CA
	log   *slog.Logger

	mu     sync.Mutex
	cfg    *tls.Config
	mtimes []time.Time
}

func (r *tlsReloader) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed() {
		if err := r.reloadLocked(); err != nil {
			r.log.Error("sds: reloading the TLS files failed; the previous certificate stays in use", "err", err)
		}
	}
	return r.cfg, nil
}

func (r *tlsReloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *tlsReloader) changed() bool {
	for i, f := range r.files {
		st, err := os.Stat(f)
		if err != nil || !st.ModTime().Equal(r.mtimes[i]) {
			return true
		}
	}
	return false
}

func (r *tlsReloader) reloadLocked() error {
	mtimes := make([]time.Time, len(r.files))
	for i, f := range r.files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("sds tls: %w", err)
		}
		mtimes[i] = st.ModTime()
	}
	cert, err := tls.LoadX509KeyPair(r.files[0], r.files[1])
	if err != nil {
		return fmt.Errorf("sds tls: certificate and key: %w", err)
	}
	pem, err := os.ReadFile(r.files[2])
	if err != nil {
		return fmt.Errorf("sds tls: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("sds tls: client CA: no PEM certificate in " + r.files[2])
	}
	r.mtimes = mtimes
	r.cfg = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"},
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	return nil
}
