package extproc_test

import (
	"context"
	"io"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking/maskingtest"
	sessionrec "github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/test/cputime"
	"github.com/airlockhq/airlock/test/standin"
)

// passthrough is an ext_proc server that answers every message with
// CONTINUE and no mutation: the baseline for BenchmarkExtProcStreamed.
type passthrough struct {
	extprocv3.UnimplementedExternalProcessorServer
	// echo replaces each body chunk with a copy of itself, as a server that
	// rewrites bodies must.
	echo bool
}

func (p passthrough) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &extprocv3.ProcessingResponse{}
		switch req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			br := &extprocv3.BodyResponse{}
			if p.echo {
				br.Response = &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
					Mutation: &extprocv3.BodyMutation_Body{Body: append([]byte(nil), req.GetResponseBody().GetBody()...)}}}
			}
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: br}
		default:
			continue
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// benchBody is about 1 MiB of instance-list JSON with a few secrets.
func benchBody() []byte { return maskingtest.StreamedInstanceList() }

// benchSetup serves register and returns a stand-in filter, the metadata
// ext_authz forwards for an allowed request in a recorded session, and an
// upstream answering benchBody.
func benchSetup(b *testing.B, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) (*standin.ExtProcFilter, *corev3.Metadata, *upstream, int) {
	md := metadata(b, handoff.Metadata{RequestID: "bench", SessionID: "s-bench", Subject: "agent-1", GCPMethod: "compute.instances.list", Decision: "allowed"})
	conn := serve(b, register, opts...)
	body := benchBody()
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	return standin.NewExtProcFilter(conn, config(64<<10)), md, up, len(body)
}

func benchExtProc(b *testing.B, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) {
	f, md, up, size := benchSetup(b, register, opts...)
	cpu0 := cputime.Process()
	for b.Loop() {
		res := f.Do(context.Background(), get(b, "GET"), md, up)
		if res.Status != 200 || res.Reset || len(res.Body) < size/2 {
			b.Fatalf("status %d reset=%v details %q", res.Status, res.Reset, res.Details)
		}
	}
	if d := cputime.Process() - cpu0; d > 0 {
		// Stand-in, gRPC and server share the process: CPU per byte moved.
		b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "cpuMB/s")
	}
}

// airlockServer is airlock's ext_proc server with opts (logs discarded),
// to register on a gRPC server with extproc.GRPCServerOptions.
func airlockServer(b *testing.B, opts extproc.Options) func(grpc.ServiceRegistrar) {
	opts.Logger = discard()
	srv, err := extproc.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	return srv.Register
}

// BenchmarkExtProcStreamed drives airlock's server over loopback gRPC with
// 64 KiB STREAMED chunks of a 1 MiB JSON response.
func BenchmarkExtProcStreamed(b *testing.B) {
	benchExtProc(b, airlockServer(b, extproc.Options{}), extproc.GRPCServerOptions()...)
}

// BenchmarkExtProcPassthrough is the same traffic through a server that
// changes nothing.
func BenchmarkExtProcPassthrough(b *testing.B) {
	benchExtProc(b, func(r grpc.ServiceRegistrar) { extprocv3.RegisterExternalProcessorServer(r, passthrough{}) })
}

// BenchmarkExtProcEcho is a server that sends every chunk back unchanged:
// the floor for any server that rewrites bodies.
func BenchmarkExtProcEcho(b *testing.B) {
	benchExtProc(b, func(r grpc.ServiceRegistrar) {
		extprocv3.RegisterExternalProcessorServer(r, passthrough{echo: true})
	})
}

// benchExtProcParallel is benchExtProc with 16 concurrent streams:
// throughput, as Envoy drives the server.
func benchExtProcParallel(b *testing.B, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) {
	runParallel(b, register, false, opts...)
}

// runParallel drives 16 concurrent streams; with cpu it also reports the
// CPU time of the whole process (stand-in, gRPC on both sides, server) per
// response.
func runParallel(b *testing.B, register func(grpc.ServiceRegistrar), cpu bool, opts ...grpc.ServerOption) {
	f, md, up, size := benchSetup(b, register, opts...)
	b.SetParallelism(8) // 16 streams on 2 cores
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res := f.Do(context.Background(), get(b, "GET"), md, up)
			if res.Status != 200 || res.Reset || len(res.Body) < size/2 {
				b.Errorf("status %d reset=%v details %q", res.Status, res.Reset, res.Details)
				return
			}
		}
	})
	if d := cputime.Process() - cpu0; cpu && d > 0 {
		b.ReportMetric(float64(d.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// BenchmarkExtProcStreamedParallel is airlock's server, recording off.
func BenchmarkExtProcStreamedParallel(b *testing.B) {
	benchExtProcParallel(b, airlockServer(b, extproc.Options{}), extproc.GRPCServerOptions()...)
}

// BenchmarkExtProcStreamedRecordedParallel is the same with the session
// recorder on (local sink, fsync'd spool): the cost of recording is its
// throughput against BenchmarkExtProcStreamedParallel.
func BenchmarkExtProcStreamedRecordedParallel(b *testing.B) {
	benchExtProcParallel(b, airlockServer(b, extproc.Options{Recorder: benchRecorder(b), RecordBodyBytes: 16 << 10}), extproc.GRPCServerOptions()...)
}

func benchRecorder(b *testing.B) *sessionrec.Recorder {
	dir := b.TempDir()
	sink, err := sessionrec.NewFileSink(dir + "/sessions")
	if err != nil {
		b.Fatal(err)
	}
	rec, err := sessionrec.New(context.Background(), sessionrec.Options{
		Sink: sink, Spool: dir + "/spool", MaxBodyBytes: 16 << 10,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	return rec
}

// BenchmarkExtProcStreamedRecorded is BenchmarkExtProcStreamed with the
// session recorder on: one stream at a time, so each response waits for its
// own fsync (latency, not throughput).
func BenchmarkExtProcStreamedRecorded(b *testing.B) {
	benchExtProc(b, airlockServer(b, extproc.Options{Recorder: benchRecorder(b), RecordBodyBytes: 16 << 10}), extproc.GRPCServerOptions()...)
}

// BenchmarkExtProcPassthroughParallel is a pass-through server (gRPC
// defaults) under the same 16 streams: the baseline of
// BenchmarkExtProcStreamedParallel.
func BenchmarkExtProcPassthroughParallel(b *testing.B) {
	benchExtProcParallel(b, func(r grpc.ServiceRegistrar) { extprocv3.RegisterExternalProcessorServer(r, passthrough{}) })
}

// BenchmarkExtProcPassthroughTunedParallel is the pass-through server with
// airlock's own gRPC options: the cost of masking alone.
func BenchmarkExtProcPassthroughTunedParallel(b *testing.B) {
	benchExtProcParallel(b, func(r grpc.ServiceRegistrar) { extprocv3.RegisterExternalProcessorServer(r, passthrough{}) },
		extproc.GRPCServerOptions()...)
}

// benchExtProcCPU is benchExtProcParallel reporting the CPU time of the
// whole process (stand-in, gRPC on both sides, server) per response: on a
// shared machine another tenant's load moves wall time far more than CPU
// time, so this is the steadier figure to compare servers with.
func benchExtProcCPU(b *testing.B, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) {
	runParallel(b, register, true, opts...)
}

// BenchmarkExtProcCPUStreamed is BenchmarkExtProcStreamedParallel measured
// in CPU time per response.
func BenchmarkExtProcCPUStreamed(b *testing.B) {
	benchExtProcCPU(b, airlockServer(b, extproc.Options{}), extproc.GRPCServerOptions()...)
}

// BenchmarkExtProcCPUPassthrough is BenchmarkExtProcPassthroughParallel
// measured in CPU time per response.
func BenchmarkExtProcCPUPassthrough(b *testing.B) {
	benchExtProcCPU(b, func(r grpc.ServiceRegistrar) { extprocv3.RegisterExternalProcessorServer(r, passthrough{}) })
}
