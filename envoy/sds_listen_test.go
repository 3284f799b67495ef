package envoy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/envoy/envoytest"
)

func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestListenSDSUnixSocket(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "run", "sds.sock")
	l, err := envoy.ListenSDS("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != envoy.SDSSocketMode {
		t.Errorf("socket mode = %v, want socket %o", st.Mode(), envoy.SDSSocketMode)
	}
	// A live socket is not taken over.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := envoy.ListenSDS("unix://" + path); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	l.Close()
	// A stale socket (left by a crash) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l2, err := envoy.ListenSDS("unix://" + path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
	// Any other file is never removed.
	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := envoy.ListenSDS("unix://" + file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("the regular file was touched")
	}
}

// serveTLS serves gRPC health on loopback with SDSServerTLS.
func serveTLS(t *testing.T, cert, key, ca string) string {
	t.Helper()
	tc, err := envoy.SDSServerTLS(cert, key, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return l.Addr().String()
}

// healthOver calls grpc.health.v1 over TLS with an optional client
// certificate, trusting serverCA.
func healthOver(t *testing.T, addr, serverCA, cert, key string) error {
	t.Helper()
	pem, err := os.ReadFile(serverCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// TestSDSServerTLSRequiresClientCertificates: a client certificate from
// the client CA is accepted; none, or one from another CA, is refused; so
// is plaintext. A rotated server certificate is served without a restart.
func TestSDSServerTLSRequiresClientCertificates(t *testing.T) {
	serverCA := envoytest.NewCA(t, "airlock-sds")
	clientCA := envoytest.NewCA(t, "envoy-clients")
	stranger := envoytest.NewCA(t, "stranger")
	cert, key := serverCA.Issue("127.0.0.1", false)
	addr := serveTLS(t, cert, key, clientCA.CertFile)

	goodCert, goodKey := clientCA.Issue("envoy", true)
	if err := healthOver(t, addr, serverCA.CertFile, goodCert, goodKey); err != nil {
		t.Fatalf("a client certificate of the client CA was refused: %v", err)
	}
	if err := healthOver(t, addr, serverCA.CertFile, "", ""); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	badCert, badKey := stranger.Issue("envoy", true)
	if err := healthOver(t, addr, serverCA.CertFile, badCert, badKey); err == nil {
		t.Fatal("a client certificate of another CA was served")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a plaintext client was served")
	}

	// Rotation: the files now hold a certificate of another CA; the next
	// handshake presents it.
	rotatedCA := envoytest.NewCA(t, "airlock-sds-2")
	newCert, newKey := rotatedCA.Issue("127.0.0.1", false)
	for src, dst := range map[string]string{newCert: cert, newKey: key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// A distinct modification time even on a coarse clock.
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(dst, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := healthOver(t, addr, rotatedCA.CertFile, goodCert, goodKey); err != nil {
		t.Fatalf("the rotated certificate is not served: %v", err)
	}
	if err := healthOver(t, addr, serverCA.CertFile, goodCert, goodKey); err == nil {
		t.Fatal("the old certificate is still served after rotation")
	}
}
