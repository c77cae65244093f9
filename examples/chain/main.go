// Command chain composes the resilience layers by hand with middleware.Chain,
// tunes each one with its options, and shows them at work on a driver whose
// calls fail the way a flaky engine's do.
//
//	go run ./examples/chain
//
// resilient.Wrap builds the recommended chain with production defaults;
// compose it yourself when you want other settings, fewer layers, or an
// interceptor of your own in between. The same chain wraps any driver, the
// Docker driver included:
//
//	docker, err := dockerdriver.New()
//	if err != nil { ... }
//	d := middleware.Chain(tracing.New(), retry.New(retry.WithMaxAttempts(5)))(docker)
//
// This program needs no daemon: its base driver is the in-memory memdriver,
// behind an interceptor that injects connection errors (the first two
// creates fail, every stop fails), and its spans go to an in-memory recorder
// so that it can print them. Its output is the same on every run.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/tracing"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chain:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// A service would pass the providers of otlp.NewProviders here.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.WithoutCancel(ctx))

	// The order resilient.Wrap uses, outermost first: one span per logical
	// call; invalid input refused before it costs anything; every retry
	// attempt passes the breaker and takes a rate-limit token.
	d := middleware.Chain(
		tracing.New(tracing.WithTracerProvider(tp)),
		middleware.Validate(),
		retry.New(
			retry.WithMaxAttempts(5),                       // 5 calls in all (default 3)
			retry.WithInitialInterval(10*time.Millisecond), // first wait (default 100ms)
			retry.WithMaxInterval(100*time.Millisecond),    // cap on a wait (default 2s)
			retry.WithMaxElapsedTime(2*time.Second),        // give up after (default 10s)
			retry.WithOnRetry(func(_ context.Context, info retry.Info) {
				fmt.Fprintf(out, "  retry: %s attempt %d after %s\n", info.Op, info.Attempt, contract.CodeOf(info.Err))
			}),
		),
		breaker.New(
			breaker.WithConsecutiveFailures(3),      // open after 3 failures in a row (default 5)
			breaker.WithOpenTimeout(30*time.Second), // stay open (default 30s)
			breaker.WithOnStateChange(func(op contract.Op, _ string, from, to breaker.State) {
				fmt.Fprintf(out, "  breaker: %s %s -> %s\n", op, from, to)
			}),
		),
		ratelimit.New(100, 10, // 100 calls/s, bursts of 10
			ratelimit.WithMaxConcurrent(4),     // 4 calls in flight (default: no cap)
			ratelimit.WithMaxWait(time.Second), // wait for a token at most (default 5s)
		),
		injectFaults(map[contract.Op]int{
			contract.OpCreateContainer: 2,  // the first two creates fail
			contract.OpStopContainer:   -1, // every stop fails
		}),
	)(memdriver.New())

	fmt.Fprintln(out, "create, whose first two attempts fail:")
	c, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "resilient-workload:latest"))
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	fmt.Fprintf(out, "  ok: container %s, session %s\n", c.Status, c.SessionID)

	if err := d.StartContainer(ctx, c.ID); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logs, err := d.GetContainerLogs(ctx, c.ID, contract.LogOptions{})
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	fmt.Fprintf(out, "start, then logs:\n  %s", logs)

	fmt.Fprintln(out, "stop, which always fails:")
	err = d.StopContainer(ctx, c.ID, contract.StopOptions{Timeout: time.Second})
	var re *retry.Error
	if !errors.As(err, &re) {
		return fmt.Errorf("stop: %v, want the retry layer to give up", err)
	}
	fmt.Fprintf(out, "  gave up after %d attempts; last error %s, circuit open: %t\n",
		re.Attempts, contract.CodeOf(err), errors.Is(err, contract.ErrCircuitOpen))

	h, err := d.HealthCheck(ctx)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	fmt.Fprintf(out, "health (never retried, limited or refused): %s, %s\n", h.Status, h.Error)

	fmt.Fprintln(out, "create as root with the Docker socket mounted:")
	bad := contract.NewContainerConfig("session-1", "resilient-workload:latest")
	bad.Security.User = "0"
	bad.Volumes = []contract.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	_, err = d.CreateContainer(ctx, bad)
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("insecure create: %v, want a validation error", err)
	}
	paths := make([]string, 0, len(ve.Issues))
	for _, is := range ve.Issues {
		paths = append(paths, is.Path)
	}
	fmt.Fprintf(out, "  refused with %s before any attempt: %s\n", contract.CodeOf(err), strings.Join(paths, ", "))

	if err := d.RemoveContainer(ctx, c.ID); err != nil {
		return fmt.Errorf("remove: %w", err)
	}

	fmt.Fprintln(out, "spans:")
	for _, s := range rec.Ended() {
		status := "ok"
		if s.Status().Code.String() == "Error" {
			status = "error " + s.Status().Description
		}
		var events []string
		for _, e := range s.Events() {
			events = append(events, e.Name)
		}
		line := fmt.Sprintf("  %-34s %-20s %s", s.Name(), status, strings.Join(events, " "))
		fmt.Fprintln(out, strings.TrimRight(line, " "))
	}
	return nil
}

// injectFaults returns an interceptor that fails calls before they reach
// the driver, with the retryable NETWORK error a dropped connection gives:
// the first n calls of each operation in fails, or every call when n < 0.
func injectFaults(fails map[contract.Op]int) middleware.Middleware {
	var (
		mu    sync.Mutex
		calls = make(map[contract.Op]int)
	)
	return middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		mu.Lock()
		calls[call.Op]++
		n := calls[call.Op]
		mu.Unlock()
		if limit, ok := fails[call.Op]; ok && (limit < 0 || n <= limit) {
			return contract.NewError(contract.CodeNetwork, call.Op, call.ID, "connection reset by peer (injected)", nil)
		}
		return next(ctx)
	})
}
