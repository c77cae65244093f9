package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
)

// TestChaosDaemonHungDefaults puts resilient.Wrap with its defaults, and
// nothing tuned, in front of a daemon that accepts connections and never
// answers, with callers that give every call a 20s deadline. The default
// per-attempt timeouts cut the attempts, the breaker counts them, and
// within a minute every operation fails fast: under 50ms, retryable, with
// a RetryAfter. Once an operation fails fast, at most one call and one
// attempt per open period go back into the hang, and HealthCheck says
// unhealthy and names the open circuits.
func TestChaosDaemonHungDefaults(t *testing.T) {
	const (
		deadline  = 20 * time.Second
		window    = 60 * time.Second
		fast      = 50 * time.Millisecond
		callers   = 5 // per operation
		fastInRow = 5
	)
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host})
	ctx := testCtx(t, 3*time.Minute)
	if _, err := r.d.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	sid := newSession(t)
	defer r.cleanupSession(sid)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatal(err)
	}
	p.toxic(t, "hang", "timeout", "downstream", 1, map[string]int64{"timeout": 0})
	hung := time.Now()

	ops := []struct {
		op contract.Op
		do func(context.Context) error
	}{
		{contract.OpGetContainer, func(ctx context.Context) error { _, err := r.d.GetContainer(ctx, inst.ID); return err }},
		{contract.OpListContainers, func(ctx context.Context) error {
			_, err := r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
			return err
		}},
		{contract.OpCreateContainer, func(ctx context.Context) error { _, err := r.d.CreateContainer(ctx, smallConfig(sid)); return err }},
		{contract.OpStartContainer, func(ctx context.Context) error { return r.d.StartContainer(ctx, inst.ID) }},
	}
	// Every call is recorded; after the window, each operation's "fails
	// fast from F" is the earliest F such that the calls begun since F
	// include at least fastInRow fast failures, and the calls that were
	// slow (or still running) and the attempts that reached the driver
	// since F are each at most the times its circuit half-opened since F:
	// one probe each. Calls admitted before F may still come back slow:
	// they began before it failed fast.
	type call struct {
		start   time.Duration // from the hang
		took    time.Duration // -1 while running
		reached int           // attempts that had reached the driver when it began
		code    string        // of the error it returned
	}
	type opState struct {
		mu    sync.Mutex
		calls []call
		bad   []string // fast failures without a retryable error and a RetryAfter
	}
	states := make([]*opState, len(ops))
	var wg sync.WaitGroup
	for i, oc := range ops {
		st := &opState{}
		states[i] = st
		for range callers {
			wg.Go(func() {
				for time.Since(hung) < window {
					cctx, cancel := context.WithTimeout(ctx, deadline)
					st.mu.Lock()
					k := len(st.calls)
					st.calls = append(st.calls, call{start: time.Since(hung), took: -1, reached: r.attempts.Calls(oc.op)})
					st.mu.Unlock()
					start := time.Now()
					err := oc.do(cctx)
					el := time.Since(start)
					cancel()
					r.stats.observe(oc.op, el, err)
					st.mu.Lock()
					st.calls[k].took, st.calls[k].code = el, codeOf(err)
					if el < fast && err != nil && (!contract.IsRetryable(err) || contract.RetryAfter(err) <= 0) {
						st.bad = append(st.bad, codeOf(err))
					}
					st.mu.Unlock()
					if el < fast {
						time.Sleep(10 * time.Millisecond) // a caller that got a quick answer comes back soon
					}
				}
			})
		}
	}
	time.Sleep(window)
	h, herr := r.d.HealthCheck(ctx)
	type verdict struct {
		since         time.Duration // -1: never failed fast
		fast, slow    int
		probes, bound int
		bad           []string
		slowCalls     []string // begun at + took (-1: still running), latest first
	}
	verdicts := make([]verdict, len(ops))
	changes := r.circuits.list()
	for i, oc := range ops {
		var halfOpened []time.Duration // from the hang
		for _, c := range changes {
			if c.Op == oc.op && c.To == breaker.HalfOpen {
				halfOpened = append(halfOpened, c.At.Sub(hung))
			}
		}
		st := states[i]
		st.mu.Lock()
		at, reached := time.Since(hung), r.attempts.Calls(oc.op)
		v := verdict{since: -1, bad: st.bad}
		var slowCalls []string
		fastN, slowN := 0, 0
		for k := len(st.calls) - 1; k >= 0; k-- {
			c := st.calls[k]
			switch {
			case c.took >= 0 && c.took < fast:
				fastN++
			case c.took >= fast || at-c.start >= fast:
				slowN++
				slowCalls = append(slowCalls, fmt.Sprintf("%v+%v %s", c.start.Round(time.Millisecond), c.took.Round(time.Millisecond), c.code))
			}
			bound := 0
			for _, h := range halfOpened {
				if h >= c.start {
					bound++
				}
			}
			if probes := reached - c.reached; fastN >= fastInRow && slowN <= bound && probes <= bound {
				v = verdict{since: c.start, fast: fastN, slow: slowN, probes: probes, bound: bound, bad: st.bad}
			}
		}
		st.mu.Unlock()
		v.slowCalls = slowCalls
		verdicts[i] = v
	}
	p.clearToxics() // let the calls still in the hang return
	wg.Wait()

	for i, oc := range ops {
		v := verdicts[i]
		if v.since < 0 {
			t.Errorf("%s: not failing fast within %v after the daemon hung; slow calls: %v", oc.op, window, v.slowCalls)
			continue
		}
		if len(v.bad) > 0 {
			t.Errorf("%s: fast failures without a retryable error and a RetryAfter: %v", oc.op, v.bad)
		}
		t.Logf("%s: failing fast %v after the daemon hung: since then %d fast calls, %d slow, %d attempt(s) reached it (its circuit half-opened %d time(s))",
			oc.op, v.since.Round(time.Millisecond), v.fast, v.slow, v.probes, v.bound)
	}
	if herr != nil || h.Status != contract.Unhealthy || !strings.Contains(h.Error, "circuit open") {
		t.Errorf("HealthCheck on the hung daemon = %+v, %v; want unhealthy, naming the open circuits", h, herr)
	}
	t.Logf("HealthCheck: %s, %q; limits %+v", h.Status, h.Error, h.Limits)
	r.report(t, "a hung daemon behind resilient.Wrap's defaults; 20s caller deadlines, "+strconv.Itoa(callers)+" callers per operation")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}
