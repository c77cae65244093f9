package resilient_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/tracing"
)

// sandbox is a memdriver whose exec handler counts the commands it runs,
// behind Faulty and Wrap with opts.
type sandbox struct {
	mem    *memdriver.Driver
	faulty *drivertest.Faulty
	d      contract.ContainerDriver
	spans  *tracetest.SpanRecorder
	runs   atomic.Int64
	id     string // a running container
}

func newSandbox(t *testing.T, handler memdriver.ExecHandler, opts ...resilient.Option) *sandbox {
	t.Helper()
	s := &sandbox{}
	if handler == nil {
		handler = drivertest.WorkloadExec
	}
	s.mem = memdriver.New(memdriver.WithExecHandler(func(ctx context.Context, id string, o contract.ExecOptions) (contract.ExecResult, error) {
		s.runs.Add(1)
		return handler(ctx, id, o)
	}))
	s.faulty = drivertest.NewFaulty(s.mem)
	s.spans = tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	opts = append([]resilient.Option{
		resilient.WithTracing(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(metricnoop.NewMeterProvider())),
	}, opts...)
	s.d = resilient.Wrap(s.faulty, opts...)
	cfg := contract.NewContainerConfig("s1", "alpine:3.20")
	cfg.Security.ReadOnly = false
	inst, err := s.mem.CreateContainer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.mem.StartContainer(context.Background(), inst.ID); err != nil {
		t.Fatal(err)
	}
	s.id = inst.ID
	return s
}

func (s *sandbox) exec(ctx context.Context, opts contract.ExecOptions) (contract.ExecResult, error) {
	return s.d.(contract.Executor).ExecContainer(ctx, s.id, opts)
}

var exit0 = contract.ExecOptions{Command: []string{"/workload", "exit", "0"}}

func TestWrapKeepsSandboxInterfaces(t *testing.T) {
	d := resilient.Wrap(memdriver.New())
	_, e := d.(contract.Executor)
	_, c := d.(contract.FileCopier)
	_, s := d.(contract.StatsReader)
	if !e || !c || !s {
		t.Errorf("Wrap(memdriver): Executor %v, FileCopier %v, StatsReader %v; want all", e, c, s)
	}
	onlyExec := struct {
		contract.ContainerDriver
		contract.Executor
	}{memdriver.New(), memdriver.New()}
	d = resilient.Wrap(onlyExec)
	_, e = d.(contract.Executor)
	_, c = d.(contract.FileCopier)
	_, s = d.(contract.StatsReader)
	_, l := d.(contract.LogStreamer)
	if !e || c || s || l {
		t.Errorf("Wrap of a driver with only Executor: Executor %v, FileCopier %v, StatsReader %v, LogStreamer %v; want only Executor", e, c, s, l)
	}
}

// An exec whose answer is lost after it ran is not run again; marked
// idempotent, it is.
func TestExecAfterLostAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSandbox(t, nil)
		s.faulty.Inject(contract.OpExecContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
		_, err := s.exec(t.Context(), exit0)
		if !errors.Is(err, retry.ErrOutcomeUnknown) || !errors.Is(err, contract.ErrTimeout) {
			t.Errorf("ExecContainer through a lost answer = %v; want a give-up with retry.ErrOutcomeUnknown and the TIMEOUT", err)
		}
		if n := s.runs.Load(); n != 1 {
			t.Errorf("the command ran %d times, want 1", n)
		}

		s.faulty.Reset()
		s.runs.Store(0)
		s.faulty.Inject(contract.OpExecContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
		idem := exit0
		idem.Idempotent = true
		if _, err := s.exec(t.Context(), idem); err != nil {
			t.Errorf("idempotent ExecContainer through a lost answer = %v; want success on the retry", err)
		}
		if n := s.runs.Load(); n != 2 {
			t.Errorf("the idempotent command ran %d times, want 2", n)
		}
	})
}

// An exec refused before it left (an open circuit, a limit) is retried
// like any call: nothing ran.
func TestExecRefusedLocallyIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSandbox(t, nil)
		limited := contract.NewError(contract.CodeRateLimited, contract.OpExecContainer, "", "injected", nil)
		s.faulty.Inject(contract.OpExecContainer, drivertest.Fault{Nth: 1, Count: 1, Err: limited})
		if _, err := s.exec(t.Context(), exit0); err != nil {
			t.Errorf("ExecContainer after a local refusal = %v; want success on the retry", err)
		}
		if n := s.runs.Load(); n != 1 {
			t.Errorf("the command ran %d times, want 1", n)
		}
	})
}

func makeTar(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, body)
	tw.Close()
	return buf.Bytes()
}

// A copy in whose answer is lost is repeated with the stream read again
// from where it was; a stream that cannot seek ends the call.
func TestCopyToAfterLostAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSandbox(t, nil)
		c := s.d.(contract.FileCopier)
		s.faulty.Inject(contract.OpCopyToContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
		if err := c.CopyToContainer(t.Context(), s.id, "/tmp", bytes.NewReader(makeTar(t, "a.txt", "hello"))); err != nil {
			t.Errorf("CopyToContainer through a lost answer = %v; want success on the retry", err)
		}
		if got := s.faulty.Calls(contract.OpCopyToContainer); got != 2 {
			t.Errorf("copies = %d, want 2", got)
		}
		if b, err := s.mem.ReadFile(s.id, "/tmp/a.txt"); err != nil || string(b) != "hello" {
			t.Errorf("the file = %q, %v; want hello", b, err)
		}

		s.faulty.Reset()
		s.faulty.Inject(contract.OpCopyToContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
		once := io.MultiReader(bytes.NewReader(makeTar(t, "b.txt", "bye")))
		err := c.CopyToContainer(t.Context(), s.id, "/tmp", once)
		if err == nil || contract.IsRetryable(err) || !errors.Is(err, contract.ErrTimeout) {
			t.Errorf("CopyToContainer of a stream that cannot seek, through a lost answer = %v; want the TIMEOUT, not retryable", err)
		}
		if got := s.faulty.Calls(contract.OpCopyToContainer); got != 1 {
			t.Errorf("copies = %d, want 1: the stream cannot be sent again", got)
		}
	})
}

// Each sandbox operation has its own circuit: failing stats open theirs,
// and exec still runs.
func TestSandboxBreakerClasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSandbox(t, nil, resilient.WithoutRetry(), resilient.WithBreaker(breaker.WithConsecutiveFailures(2)))
		st := s.d.(contract.StatsReader)
		s.faulty.Inject(contract.OpContainerStats, drivertest.Fault{Err: timeout})
		for range 2 {
			if _, err := st.ContainerStats(t.Context(), s.id); !errors.Is(err, contract.ErrTimeout) {
				t.Fatalf("ContainerStats = %v, want the injected timeout", err)
			}
		}
		if _, err := st.ContainerStats(t.Context(), s.id); !errors.Is(err, contract.ErrCircuitOpen) {
			t.Errorf("ContainerStats after 2 failures = %v, want CIRCUIT_OPEN", err)
		}
		if got := s.faulty.Calls(contract.OpContainerStats); got != 2 {
			t.Errorf("stats calls = %d, want 2", got)
		}
		if _, err := s.exec(t.Context(), exit0); err != nil {
			t.Errorf("ExecContainer while the stats circuit is open = %v, want success", err)
		}
		// A non-zero exit code is a result, never a failure for the breaker.
		for range 5 {
			if res, err := s.exec(t.Context(), contract.ExecOptions{Command: []string{"/workload", "exit", "1"}}); err != nil || res.ExitCode != 1 {
				t.Fatalf("ExecContainer(exit 1) = %+v, %v", res, err)
			}
		}
	})
}

// Exec and copies are engine work; stats are reads, admitted while the
// engine work pool is full.
func TestSandboxLimiterClasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		blocking := func(ctx context.Context, id string, o contract.ExecOptions) (contract.ExecResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return contract.ExecResult{}, nil
		}
		s := newSandbox(t, blocking, resilient.WithoutRetry(),
			resilient.WithRateLimit(ratelimit.WithMaxConcurrent(1), ratelimit.WithoutWaiting()))
		done := make(chan error, 1)
		go func() { _, err := s.exec(t.Context(), exit0); done <- err }()
		synctest.Wait() // the exec holds the work pool's one slot
		if _, err := s.exec(t.Context(), exit0); !errors.Is(err, contract.ErrRateLimited) {
			t.Errorf("a second ExecContainer while one runs = %v, want RATE_LIMITED", err)
		}
		c := s.d.(contract.FileCopier)
		if err := c.CopyToContainer(t.Context(), s.id, "/tmp", bytes.NewReader(makeTar(t, "a", "a"))); !errors.Is(err, contract.ErrRateLimited) {
			t.Errorf("CopyToContainer while an exec runs = %v, want RATE_LIMITED: both are engine work", err)
		}
		if _, err := s.d.(contract.StatsReader).ContainerStats(t.Context(), s.id); err != nil {
			t.Errorf("ContainerStats while an exec holds the work pool = %v; want it admitted as a read", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Errorf("the first exec = %v", err)
		}
	})
}

// Validation refuses bad sandbox input before any layer or the driver.
func TestSandboxValidation(t *testing.T) {
	s := newSandbox(t, nil)
	if _, err := s.exec(t.Context(), contract.ExecOptions{}); !errors.Is(err, contract.ErrConfiguration) {
		t.Errorf("ExecContainer without a command = %v, want CONFIGURATION", err)
	}
	c := s.d.(contract.FileCopier)
	if err := c.CopyToContainer(t.Context(), s.id, "tmp/../etc", strings.NewReader("")); !errors.Is(err, contract.ErrConfiguration) {
		t.Errorf("CopyToContainer to a relative path = %v, want CONFIGURATION", err)
	}
	if _, err := c.CopyFromContainer(t.Context(), s.id, "/tmp\x00"); !errors.Is(err, contract.ErrConfiguration) {
		t.Errorf("CopyFromContainer of a path with NUL = %v, want CONFIGURATION", err)
	}
	for _, op := range []contract.Op{contract.OpExecContainer, contract.OpCopyToContainer, contract.OpCopyFromContainer} {
		if n := s.faulty.Calls(op); n != 0 {
			t.Errorf("%s reached the driver %d times, want 0", op, n)
		}
	}
}

// Spans of the sandbox operations carry the container, the exit code and
// byte counts, never the command, its env, input or output, or paths.
func TestSandboxSpans(t *testing.T) {
	s := newSandbox(t, nil)
	const secret = "s3cret-value"
	res, err := s.exec(t.Context(), contract.ExecOptions{
		Command: []string{"/workload", "cat"}, Env: map[string]string{"TOKEN": secret}, Stdin: []byte(secret + "\n"),
	})
	if err != nil || res.Stdout != secret+"\n" {
		t.Fatalf("ExecContainer(cat) = %+v, %v", res, err)
	}
	c := s.d.(contract.FileCopier)
	body := makeTar(t, secret+".txt", secret)
	if err := c.CopyToContainer(t.Context(), s.id, "/tmp", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	rc, err := c.CopyFromContainer(t.Context(), s.id, "/tmp/"+secret+".txt")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	spans := s.spans.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	exec, copyIn := spans[0], spans[1]
	if exec.Name() != "ContainerDriver.ExecContainer" || attr(exec, "container.id") != s.id ||
		attr(exec, "process.exit.code") != "0" || attr(exec, "resilient.exec.stdout_bytes") != "13" {
		t.Errorf("exec span %s: %v", exec.Name(), exec.Attributes())
	}
	if copyIn.Name() != "ContainerDriver.CopyToContainer" || attr(copyIn, "resilient.copy.bytes") != "2048" {
		t.Errorf("copy span %s: %v, want the tar's %d bytes", copyIn.Name(), copyIn.Attributes(), len(body))
	}
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, secret) || strings.Contains(v, "/workload") || strings.Contains(v, "/tmp") {
				t.Errorf("span %s exports %s=%q", sp.Name(), kv.Key, v)
			}
		}
	}
}
