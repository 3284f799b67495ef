package recorder_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// fakeGCSBinary returns a fake-gcs-server executable: $FAKE_GCS_SERVER,
// one on PATH, or one built from the module in go.mod.
func fakeGCSBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FAKE_GCS_SERVER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("neither fake-gcs-server nor go is on PATH")
		}
		t.Skip("neither fake-gcs-server nor go is on PATH to build it (with CI=true this fails instead)")
	}
	out := filepath.Join(t.TempDir(), "fake-gcs-server")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/fsouza/fake-gcs-server")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building fake-gcs-server: %v\n%s", err, b)
	}
	return out
}

// emulatorProcess runs fake-gcs-server as a separate process on a fixed
// port with a filesystem backend, so it can be killed and restarted.
type emulatorProcess struct {
	t        *testing.T
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func (e *emulatorProcess) start() {
	e.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", e.port)
	e.cmd = exec.Command(e.bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(e.port),
		"-backend", "filesystem", "-filesystem-root", e.dir, "-public-host", addr, "-log-level", "error")
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/_internal/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("fake-gcs-server did not answer on %s", addr)
}

func (e *emulatorProcess) kill() {
	e.cmd.Process.Kill()
	e.cmd.Wait()
}

func TestGCSEmulatorProcess(t *testing.T) {
	bin := fakeGCSBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	emu := &emulatorProcess{t: t, bin: bin, dir: t.TempDir(), port: port}
	emu.start()
	t.Cleanup(emu.kill)
	// The client honours STORAGE_EMULATOR_HOST, as the CLI does.
	t.Setenv("STORAGE_EMULATOR_HOST", fmt.Sprintf("127.0.0.1:%d", port))
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(emu.dir, "audit"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, recorder.Options{Sink: recordertest.OpenSink(t, "gs://audit/sessions"), UploadTimeout: time.Second})
	for i := 0; i < 50; i++ {
		if err := recordRequest(ctx, r, "proc~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The emulator dies; recording goes on into the spool.
	emu.kill()
	for i := 50; i < 100; i++ {
		if err := recordRequest(ctx, r, "proc~x", "alice", i); err != nil {
			t.Fatalf("recording while the emulator is down: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().UploadErrors == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Stats(); st.UploadErrors == 0 || st.PendingEvents == 0 {
		t.Fatalf("while down: %+v", st)
	}
	emu.start()
	closeRecorder(t, r)
	sink, err := recorder.OpenSink(ctx, "gs://audit/sessions", recorder.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	total, kinds := uniqueEvents(t, sink)
	if kinds["decision"] != 100 || total != 301 {
		t.Fatalf("total %d kinds %v", total, kinds)
	}
	verifyAll(t, sink)
}
