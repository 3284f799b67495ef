package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := groupUsage(args, benchUsage, stdout, stderr); done {
		return code
	}
	switch args[0] {
	case "authz":
		return runBenchAuthz(ctx, args[1:], stdout, stderr)
	case "noop-authz":
		return runNoopAuthz(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "airlock bench: unknown command %q\n\n%s", args[0], benchUsage)
	return exitUsage
}

const benchUsage = `usage: airlock bench <command> [flags]

Commands:
  authz        load-test an ext_authz server with Check requests and print
               throughput and latency percentiles
  noop-authz   serve an ext_authz server that allows everything at once: the
               baseline the figures are ratios against

Run "airlock bench COMMAND -h" for the flags of a command.
Exit status: 0 done, 1 failed, 2 usage error.
`

// loadResult is one measured run.
type loadResult struct {
	Target   string  `json:"target"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Denied   int     `json:"denied"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
}

func runBenchAuthz(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("bench authz", "usage: airlock bench authz [--target ADDR] [--baseline ADDR] [flags]\n"+exitCodes, stderr)
	target := fl.String("target", "127.0.0.1:9001", "ext_authz server to load")
	baseline := fl.String("baseline", "", "a second ext_authz server (e.g. `airlock bench noop-authz`) measured in the same run for a ratio")
	streams := fl.Int("streams", 16, "concurrent in-flight Checks")
	duration := fl.Duration("duration", 5*time.Second, "measuring time per round")
	rounds := fl.Int("rounds", 2, "alternating rounds per target (noise evens out)")
	token := fl.String("token", "", "the agent token (default: $AIRLOCK_TOKEN)")
	tokens := fl.String("tokens", "", "comma-separated agent tokens sent to --target, stream i sending token i modulo their number (several identities at once; default: --token)")
	rawURL := fl.String("url", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "request URL")
	method := fl.String("method", "GET", "request method")
	baseURL := fl.String("baseline-url", "", "request URL sent to --baseline (default: --url)")
	baseMethod := fl.String("baseline-method", "", "request method sent to --baseline (default: --method)")
	baseToken := fl.String("baseline-token", "", "token sent to --baseline (default: --token)")
	baseTokens := fl.String("baseline-tokens", "", "comma-separated tokens sent to --baseline as --tokens are to --target")
	asJSON := fl.Bool("json", false, "print JSON")
	fullDecode := fl.Bool("full-decode", false, "decode every reply into a CheckResponse, dynamic metadata included, as Envoy does (the default reads each reply's status alone: the client shares the machine with the servers, and decoding what only one of them sends would charge that server for client work)")
	if _, code, ok := parseFlags(fl, args, stdout); !ok {
		return code
	}
	if *token == "" {
		*token = os.Getenv("AIRLOCK_TOKEN")
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		fmt.Fprintln(stderr, "airlock bench: --url must be absolute")
		return 2
	}
	req := benchRequest(*method, u, *token)
	if *tokens != "" {
		*token, _, _ = strings.Cut(*tokens, ",")
		req = benchRequest(*method, u, *token)
	}
	baseReq := req
	if *baseURL != "" || *baseMethod != "" || *baseToken != "" || *baseTokens != "" {
		bu := u
		if *baseURL != "" {
			if bu, err = url.Parse(*baseURL); err != nil || bu.Host == "" {
				fmt.Fprintln(stderr, "airlock bench: --baseline-url must be absolute")
				return 2
			}
		}
		bm := *method
		if *baseMethod != "" {
			bm = *baseMethod
		}
		bt := *token
		if *baseToken != "" {
			bt = *baseToken
		}
		baseReq = benchRequest(bm, bu, bt)
	}
	// Each target's requests, one per token.
	each := func(method string, u *url.URL, list string, one *authv3.CheckRequest) []*authv3.CheckRequest {
		if list == "" {
			return []*authv3.CheckRequest{one}
		}
		var out []*authv3.CheckRequest
		for _, tk := range strings.Split(list, ",") {
			out = append(out, benchRequest(method, u, strings.TrimSpace(tk)))
		}
		return out
	}
	reqs := each(*method, u, *tokens, req)
	baseReqs := reqs
	if baseReq != req || *baseTokens != "" {
		bu, bm := u, *method
		if *baseURL != "" {
			bu, _ = url.Parse(*baseURL)
		}
		if *baseMethod != "" {
			bm = *baseMethod
		}
		baseReqs = each(bm, bu, *baseTokens, baseReq)
	}

	targets := []string{*target}
	if *baseline != "" {
		targets = append(targets, *baseline)
	}
	if len(targets) == 2 && targets[0] == targets[1] {
		// The same server twice, two different requests: label them apart.
		targets[0] += " (url)"
		targets[1] += " (baseline-url)"
	}
	all := map[string][]time.Duration{}
	counts := map[string]*loadResult{}
	for round := 0; round < *rounds; round++ {
		for i, t := range targets {
			r := reqs
			if i == 1 {
				r = baseReqs
			}
			lat, res, err := loadOnce(ctx, strings.Fields(t)[0], r, *streams, *duration, *fullDecode)
			if err != nil {
				fmt.Fprintf(stderr, "airlock bench: %s: %v\n", t, err)
				return 1
			}
			all[t] = append(all[t], lat...)
			c := counts[t]
			if c == nil {
				c = &loadResult{Target: t}
				counts[t] = c
			}
			c.Requests += res.Requests
			c.Errors += res.Errors
			c.Denied += res.Denied
		}
	}
	var results []loadResult
	for _, t := range targets {
		c := counts[t]
		lat := all[t]
		slices.Sort(lat)
		c.RPS = float64(c.Requests) / (duration.Seconds() * float64(*rounds))
		c.P50us = percentile(lat, 0.50)
		c.P99us = percentile(lat, 0.99)
		results = append(results, *c)
	}
	if *asJSON {
		out := map[string]any{"streams": *streams, "results": results}
		if len(results) == 2 && results[1].RPS > 0 {
			out["throughput_ratio"] = results[0].RPS / results[1].RPS
			out["p99_ratio"] = results[0].P99us / results[1].P99us
		}
		_ = json.NewEncoder(stdout).Encode(out)
	} else {
		for _, r := range results {
			fmt.Fprintf(stdout, "%-22s %8.0f rps  p50 %7.1f µs  p99 %7.1f µs  (%d requests, %d denied, %d errors, %d streams)\n",
				r.Target, r.RPS, r.P50us, r.P99us, r.Requests, r.Denied, r.Errors, *streams)
		}
		if len(results) == 2 && results[1].RPS > 0 {
			fmt.Fprintf(stdout, "ratio vs baseline: throughput %.2fx, p99 %.2fx\n", results[0].RPS/results[1].RPS, results[0].P99us/results[1].P99us)
		}
	}
	for _, r := range results {
		if r.Errors > 0 {
			fmt.Fprintf(stderr, "airlock bench: %s answered %d errors\n", r.Target, r.Errors)
			return 1
		}
	}
	return 0
}

func benchRequest(method string, u *url.URL, token string) *authv3.CheckRequest {
	return checkRequest(method, u, token, map[string]string{
		"user-agent":   "google-cloud-sdk gcloud/500.0.0",
		"accept":       "application/json",
		"x-request-id": "bench",
	}, nil, "10.0.0.7:51234")
}

// loadOnce sends Checks from streams concurrent callers for d, caller i
// sending reqs[i%len(reqs)]; each reply is decoded whole when full is set,
// else read for its status alone.
func loadOnce(ctx context.Context, target string, reqs []*authv3.CheckRequest, streams int, d time.Duration, full bool) ([]time.Duration, loadResult, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, loadResult{}, err
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	// Warm up: connect and make sure the target answers.
	for _, req := range reqs {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = client.Check(wctx, req)
		cancel()
		if err != nil {
			return nil, loadResult{}, fmt.Errorf("no answer: %w", err)
		}
	}
	var (
		mu   sync.Mutex
		all  []time.Duration
		res  = loadResult{Target: target}
		wg   sync.WaitGroup
		stop = time.Now().Add(d)
	)
	for i := 0; i < streams; i++ {
		req := proto.Clone(reqs[i%len(reqs)]).(*authv3.CheckRequest)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			var n, errs, denied int
			for time.Now().Before(stop) && ctx.Err() == nil {
				envoyRequestID(req, i, n)
				t0 := time.Now()
				code, err := checkCode(ctx, conn, client, req, full)
				lat = append(lat, time.Since(t0))
				n++
				if err != nil {
					errs++
				} else if code != 0 {
					denied++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			res.Requests += n
			res.Errors += errs
			res.Denied += denied
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, res, nil
}

// checkCode sends one Check and returns the status code of its reply.
func checkCode(ctx context.Context, conn *grpc.ClientConn, client authv3.AuthorizationClient, req *authv3.CheckRequest, full bool) (int32, error) {
	if full {
		resp, err := client.Check(ctx, req)
		return resp.GetStatus().GetCode(), err
	}
	var reply checkStatus
	err := conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, req, &reply, grpc.ForceCodecV2(statusCodec{}))
	return reply.code, err
}

// checkStatus is a CheckResponse read for its status code alone; the
// reply's framing is still checked, so a malformed reply is an error.
type checkStatus struct{ code int32 }

// statusCodec marshals requests as the proto codec does and reads
// replies into a checkStatus.
type statusCodec struct{}

func (statusCodec) Name() string { return "proto" }

func (statusCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (statusCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	st := v.(*checkStatus)
	st.code = 0
	status, ok, err := lastField(b, 1, protowire.BytesType) // CheckResponse.status
	if err != nil || !ok {
		return err
	}
	status, _ = protowire.ConsumeBytes(status)
	code, ok, err := lastField(status, 1, protowire.VarintType) // Status.code
	if err != nil || !ok {
		return err
	}
	c, _ := protowire.ConsumeVarint(code)
	st.code = int32(c)
	return nil
}

// lastField returns the encoded value of the last field num of type typ
// in the message b, checking the framing of every field.
func lastField(b []byte, num protowire.Number, typ protowire.Type) (value []byte, found bool, err error) {
	for len(b) > 0 {
		n, t, k := protowire.ConsumeTag(b)
		if k < 0 {
			return nil, false, protowire.ParseError(k)
		}
		b = b[k:]
		m := protowire.ConsumeFieldValue(n, t, b)
		if m < 0 {
			return nil, false, protowire.ParseError(m)
		}
		if n == num && t == typ {
			value, found = b[:m], true
		}
		b = b[m:]
	}
	return value, found, nil
}

// envoyRequestID gives the n-th Check of stream i the stream ID, request
// time and x-request-id (a UUID v4) that Envoy gives each request, so the
// server sees the identifiers vary as they do in production.
func envoyRequestID(req *authv3.CheckRequest, i, n int) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return
	}
	h.Id = strconv.Itoa(i<<32 | n)
	r := rand.Uint64()
	h.Headers["x-request-id"] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(r>>32), uint16(r>>16), uint16(r)&0xfff, 0x8000|uint16(n)&0x3fff, rand.Uint64()&(1<<48-1))
	req.Attributes.Request.Time = timestamppb.Now()
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i]) / float64(time.Microsecond)
}

// noopAuthz answers OK to everything: the baseline of `bench authz`.
type noopAuthz struct {
	authv3.UnimplementedAuthorizationServer
}

func (noopAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{}}, nil
}

func runNoopAuthz(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("bench noop-authz", "usage: airlock bench noop-authz [--listen ADDR]\n"+exitCodes, stderr)
	listen := fl.String("listen", "127.0.0.1:9101", "address to serve on")
	if _, code, ok := parseFlags(fl, args, stdout); !ok {
		return code
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		errorf(stderr, "bench noop-authz", "%v", err)
		return 1
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, noopAuthz{})
	fmt.Fprintf(stdout, "noop ext_authz serving on %s\n", l.Addr())
	go func() { <-ctx.Done(); g.Stop() }()
	if err := g.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		errorf(stderr, "bench noop-authz", "%v", err)
		return 1
	}
	return 0
}
