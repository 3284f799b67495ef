package extproc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlockhq/airlock/extproc"
)

// childEnv makes the test binary an ext_proc server process (see
// TestMain): the memory benchmark measures that process alone.
const childEnv = "AIRLOCK_EXTPROC_RSS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		serveChild()
		return
	}
	os.Exit(m.Run())
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// serveChild serves airlock's ext_proc server with the shipped defaults
// (memory budget 256 MiB, max_decompressed_bytes 64 MiB) and the gRPC
// options `airlock serve` uses. It prints its address and its resident
// memory once ready; when stdin closes it prints its peak (VmHWM) and
// the peak of the budget in use, and exits.
func serveChild() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	srv, err := extproc.NewServer(extproc.Options{Logger: discard()})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	opts := append([]grpc.ServerOption{grpc.NumStreamWorkers(64)}, extproc.GRPCServerOptions()...)
	g := grpc.NewServer(opts...)
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	var peak atomic.Int64
	go func() {
		for {
			if n := srv.Budget().InUse(); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("READY %s %d\n", lis.Addr(), procStatus("VmRSS"))
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Printf("DONE %d %d %d\n", procStatus("VmHWM"), procStatus("VmRSS"), peak.Load())
	os.Exit(0)
}

// child is a running serveChild process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addr  string
	base  int64
}

func startChild(b *testing.B) *child {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := c.out.ReadString('\n')
	if _, err2 := fmt.Sscanf(line, "READY %s %d", &c.addr, &c.base); err != nil || err2 != nil {
		b.Fatalf("child: %q %v %v", line, err, err2)
	}
	return c
}

// finish ends the child and returns its peak and final resident memory
// and the peak of the budget in use.
func (c *child) finish(b *testing.B) (hwm, rss, budget int64) {
	b.Helper()
	_ = c.stdin.Close()
	line, err := c.out.ReadString('\n')
	if _, err2 := fmt.Sscanf(line, "DONE %d %d %d", &hwm, &rss, &budget); err != nil || err2 != nil {
		b.Fatalf("child: %q %v %v", line, err, err2)
	}
	_ = c.cmd.Wait()
	return hwm, rss, budget
}

// bombOutcome counts how downloads ended.
type bombOutcome struct {
	completed, refused, reset atomic.Int64
	bytes                     atomic.Int64
}

// download drives one gzip-bomb response through the server as Envoy
// does in STREAMED mode (16 KiB chunks sent as they arrive, replies read
// in order), discarding what comes back.
func download(ctx context.Context, client extprocv3.ExternalProcessorClient, bomb []byte, o *bombOutcome) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := client.Process(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		return err
	}
	send := func(r *extprocv3.ProcessingRequest) error { return s.Send(r) }
	if err := send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: rawHeaders(":method", "GET", ":path", "/acme-logs/bomb.txt")}}}); err != nil {
		return err
	}
	if _, err := s.Recv(); err != nil {
		return err
	}
	if err := send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: rawHeaders(":status", "200", "content-type", "text/plain", "content-encoding", "gzip")}}}); err != nil {
		return err
	}
	resp, err := s.Recv()
	if err != nil {
		return err
	}
	if resp.GetImmediateResponse() != nil {
		o.refused.Add(1)
		return nil
	}
	const chunk = 16 << 10
	n := 0
	for off := 0; off < len(bomb); off += chunk {
		end := min(off+chunk, len(bomb))
		if err := send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: bomb[off:end], EndOfStream: end == len(bomb)}}}); err != nil {
			break
		}
		n++
	}
	for range n {
		resp, err := s.Recv()
		if err != nil {
			o.reset.Add(1)
			return nil
		}
		o.bytes.Add(int64(len(resp.GetResponseBody().GetResponse().GetBodyMutation().GetBody())))
	}
	o.completed.Add(1)
	_ = s.CloseSend()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream end: %v", err)
	}
	return nil
}

// BenchmarkGzipBombsRSS runs 64 concurrent downloads of a 59 KiB gzip
// bomb (60 MiB of text once inflated, under max_decompressed_bytes, each
// 16 KiB chunk inflating to about 16 MiB) per iteration through an
// ext_proc server in its own process with the shipped defaults, and
// reports how much that process's resident memory grew at its peak
// (VmHWM less VmRSS when idle), the peak of the memory budget in use, and
// how the downloads ended. Run it with
//
//	go test -run '^$' -bench GzipBombsRSS -benchtime 3x ./extproc
func BenchmarkGzipBombsRSS(b *testing.B) {
	bomb := gzipped(b, bytes.Repeat([]byte("A"), 60<<20))
	c := startChild(b)
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	var o bombOutcome
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := download(context.Background(), client, bomb, &o); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	hwm, _, budget := c.finish(b)
	b.ReportMetric(float64(hwm-c.base)/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(budget)/(1<<20), "budget-peak-MiB")
	b.ReportMetric(float64(len(bomb))/(1<<10), "bomb-KiB")
	b.ReportMetric(float64(o.completed.Load())/float64(b.N), "completed/op")
	b.ReportMetric(float64(o.reset.Load())/float64(b.N), "reset/op")
	b.ReportMetric(float64(o.refused.Load())/float64(b.N), "refused/op")
}
