package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/grpclog"
)

// routeLibraryLogs sends the lines that libraries write on their own
// (go-redis, gRPC, and anything using the standard log package) through
// logger, in the configured format. Call it before any gRPC or Redis use.
func routeLibraryLogs(logger *slog.Logger) {
	slog.SetDefault(logger) // the log package writes through it from now on
	redis.SetLogger(redisLogger{logger.With("component", "redis")})
	grpclog.SetLoggerV2(grpcLogger{logger.With("component", "grpc")})
}

// redisLogger adapts go-redis's Printf logging: its lines report failures
// (a dial, a Sentinel lookup), so they are warnings.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// grpcLogger adapts grpclog.LoggerV2. gRPC's info and warning lines are
// connection-level detail that a hostile client can provoke at will: they
// go to debug, as gRPC's own default logger drops them. Errors stay errors.
type grpcLogger struct{ l *slog.Logger }

var _ grpclog.LoggerV2 = grpcLogger{}

func (g grpcLogger) Info(args ...any)                    { g.l.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any)                  { g.l.Debug(sprintln(args...)) }
func (g grpcLogger) Infof(format string, args ...any)    { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Warning(args ...any)                 { g.l.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any)               { g.l.Debug(sprintln(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Error(args ...any)                   { g.l.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)                 { g.l.Error(sprintln(args...)) }
func (g grpcLogger) Errorf(format string, args ...any)   { g.l.Error(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Fatal(args ...any)                   { g.l.Error(fmt.Sprint(args...)); os.Exit(1) }
func (g grpcLogger) Fatalln(args ...any)                 { g.l.Error(sprintln(args...)); os.Exit(1) }
func (g grpcLogger) Fatalf(format string, args ...any) {
	g.l.Error(fmt.Sprintf(format, args...))
	os.Exit(1)
}

// V reports whether verbosity level l is logged: gRPC's verbose levels
// (above 0) are not.
func (g grpcLogger) V(l int) bool { return l <= 0 }

func sprintln(args ...any) string { return strings.TrimSuffix(fmt.Sprintln(args...), "\n") }
