package chaos

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
)

var discardLogger = log.New(io.Discard, "", 0)

// rig is a Docker driver behind resilient.Wrap, instrumented for the
// figures: the calls that reach the driver (attempts), the retries, the
// circuits' state changes and every logical call's latency and outcome.
type rig struct {
	base     *dockerdriver.Driver
	attempts *drivertest.Faulty // no faults: counts the calls that reach the driver
	d        contract.ContainerDriver
	retries  atomic.Int64
	circuits *circuitLog
	stats    *stats
}

type rigConfig struct {
	host      string
	noKeep    bool // a new connection per request, so Toxiproxy's toxicity applies per request
	driver    []dockerdriver.Option
	wrap      []resilient.Option
	onRetry   func(context.Context, retry.Info)
	noCircuit bool
	// inner, when set, wraps the Docker driver inside the call counter:
	// it sees every attempt and its outcome as the driver returned it.
	inner middleware.Middleware
}

// newRig builds the chain the fault tests exercise:
//
//	resilient.Wrap(counting(inner(dockerdriver.New(WithHost(host)))), opts...)
//
// with hooks for retries and circuit changes added to the options.
func newRig(t testing.TB, rc rigConfig) *rig {
	t.Helper()
	r := &rig{circuits: newCircuitLog(), stats: newStats()}
	dopts := []dockerdriver.Option{dockerdriver.WithLabelPrefix(labelPrefix), dockerdriver.WithPullPolicy(dockerdriver.PullNever)}
	if rc.noKeep {
		tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
		cli, err := client.NewClientWithOpts(client.WithHTTPClient(&http.Client{Transport: tr}),
			client.WithHost(rc.host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatalf("docker client: %v", err)
		}
		t.Cleanup(func() { cli.Close() })
		dopts = append(dopts, dockerdriver.WithClient(cli))
	} else if rc.host != "" {
		dopts = append(dopts, dockerdriver.WithHost(rc.host))
	}
	base, err := dockerdriver.New(append(dopts, rc.driver...)...)
	if err != nil {
		t.Fatalf("dockerdriver.New: %v", err)
	}
	t.Cleanup(func() { base.Close() })
	r.base = base
	var inner contract.ContainerDriver = base
	if rc.inner != nil {
		inner = rc.inner(base)
	}
	r.attempts = drivertest.NewFaulty(inner)
	opts := []resilient.Option{
		resilient.WithRetry(retry.WithOnRetry(func(ctx context.Context, info retry.Info) {
			r.retries.Add(1)
			if rc.onRetry != nil {
				rc.onRetry(ctx, info)
			}
		})),
		resilient.WithBreaker(breaker.WithOnStateChange(r.circuits.record)),
	}
	r.d = resilient.Wrap(r.attempts, append(opts, rc.wrap...)...)
	return r
}

// call runs f as one logical call of op and records its latency and
// outcome.
func (r *rig) call(op contract.Op, f func() error) error {
	start := time.Now()
	err := f()
	r.stats.observe(op, time.Since(start), err)
	return err
}

// attemptsOf returns the calls of ops that reached the driver.
func (r *rig) attemptsOf(ops ...contract.Op) int {
	n := 0
	for _, op := range ops {
		n += r.attempts.Calls(op)
	}
	return n
}

// report logs the figures of the rig's calls.
func (r *rig) report(t testing.TB, title string) {
	t.Helper()
	var b strings.Builder
	r.stats.table(&b, r.attempts)
	fmt.Fprintf(&b, "retries: %d\n", r.retries.Load())
	if s := r.circuits.summary(); s != "" {
		fmt.Fprintf(&b, "circuits: %s\n", s)
	}
	t.Logf("%s\n%s", title, b.String())
}

// stats collects the latency and outcome of logical calls.
type stats struct {
	mu    sync.Mutex
	start time.Time
	end   time.Time
	lat   map[contract.Op][]time.Duration
	codes map[contract.Op]map[string]int
}

func newStats() *stats {
	return &stats{start: time.Now(), lat: map[contract.Op][]time.Duration{}, codes: map[contract.Op]map[string]int{}}
}

func (s *stats) observe(op contract.Op, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[op] = append(s.lat[op], d)
	if s.codes[op] == nil {
		s.codes[op] = map[string]int{}
	}
	s.codes[op][codeOf(err)]++
	s.end = time.Now()
}

// total returns the number of calls and those that failed, by code.
func (s *stats) total() (calls int, errs map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs = map[string]int{}
	for _, m := range s.codes {
		for c, n := range m {
			calls += n
			if c != "ok" {
				errs[c] += n
			}
		}
	}
	return calls, errs
}

// all returns every latency recorded.
func (s *stats) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []time.Duration
	for _, l := range s.lat {
		all = append(all, l...)
	}
	return all
}

// table writes one line per operation and a total line: calls, attempts
// that reached the driver, outcomes by code, p50 and p99 latency.
func (s *stats) table(w io.Writer, attempts *drivertest.Faulty) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(w, "%-20s %6s %8s %8s %8s  %s\n", "op", "calls", "attempts", "p50", "p99", "outcomes")
	var all []time.Duration
	calls, tries := 0, 0
	outcomes := map[string]int{}
	for _, op := range slices.Sorted(maps.Keys(s.lat)) {
		l := s.lat[op]
		all = append(all, l...)
		n := 0
		if attempts != nil {
			n = attempts.Calls(op)
		}
		calls += len(l)
		tries += n
		for c, k := range s.codes[op] {
			outcomes[c] += k
		}
		fmt.Fprintf(w, "%-20s %6d %8d %8s %8s  %s\n", op, len(l), n, ms(percentile(l, 50)), ms(percentile(l, 99)), formatCounts(s.codes[op]))
	}
	fmt.Fprintf(w, "%-20s %6d %8d %8s %8s  %s\n", "total", calls, tries, ms(percentile(all, 50)), ms(percentile(all, 99)), formatCounts(outcomes))
}

func formatCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// percentile returns the p-th percentile (nearest rank) of l.
func percentile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// circuitLog records the state changes of the breaker layer, with their
// time.
type circuitLog struct {
	mu      sync.Mutex
	changes []circuitChange
}

type circuitChange struct {
	Op       contract.Op
	From, To breaker.State
	At       time.Time
}

func newCircuitLog() *circuitLog { return &circuitLog{} }

func (l *circuitLog) record(op contract.Op, _ string, from, to breaker.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, circuitChange{op, from, to, time.Now()})
}

// list returns the changes so far.
func (l *circuitLog) list() []circuitChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.changes)
}

// first returns the first change of op to state to, at or after since.
func (l *circuitLog) first(op contract.Op, to breaker.State, since time.Time) (circuitChange, bool) {
	for _, c := range l.list() {
		if c.Op == op && c.To == to && !c.At.Before(since) {
			return c, true
		}
	}
	return circuitChange{}, false
}

// state returns the last known state of op's circuit.
func (l *circuitLog) state(op contract.Op) breaker.State {
	st := breaker.Closed
	for _, c := range l.list() {
		if c.Op == op {
			st = c.To
		}
	}
	return st
}

func (l *circuitLog) summary() string {
	var parts []string
	for _, c := range l.list() {
		parts = append(parts, fmt.Sprintf("%s %s->%s", c.Op, c.From, c.To))
	}
	return strings.Join(parts, ", ")
}
