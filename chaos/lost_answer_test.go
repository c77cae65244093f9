package chaos

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
)

// The tests of this file lose the answer of a start or a stop after the
// daemon acted on it, or the request before the daemon saw it, and count,
// through the hop and the daemon, how often the work was done: a start
// whose outcome is unknown must not run a container twice, a stop must
// not be sent twice, and neither may report success for work that did not
// happen.

const (
	// lostBackoff is the wait before a retry: a one-shot container has
	// long exited by then.
	lostBackoff = 300 * time.Millisecond
	// lostAttemptTimeout cuts each attempt in the cases where the hop
	// holds a lost answer until the attempt gives up. It leaves a stop
	// time for its grace period and the driver's kill margin.
	lostAttemptTimeout = 5 * time.Second
	// oneShotLine is the only line the one-shot workload prints.
	oneShotLine = "workload: stdout line 1"
	// servingLine is the line the long-lived workload prints once it
	// serves, and handles SIGTERM.
	servingLine = "workload: serving on :8080"
)

// oneShot is the command of the start tests' containers: print
// oneShotLine and exit 0 at once.
var oneShot = []string{"print", "1"}

// answerLoss is a way to lose the answer of a request the daemon acted on.
type answerLoss struct {
	name string
	// hold: the hop holds the answer until the attempt's timeout cuts it;
	// otherwise it closes the connection at once.
	hold bool
	// code is what the driver returns for the attempt whose answer is
	// lost.
	code contract.Code
}

var answerLosses = []answerLoss{
	{name: "connection-closed", code: contract.CodeNetwork},
	{name: "attempt-timeout", hold: true, code: contract.CodeTimeout},
}

// lostRig is a rig whose retries wait lostBackoff without jitter, with
// each attempt cut after lostAttemptTimeout when hold is set, and a log of
// the calls that reached the driver.
type lostRig struct {
	*rig
	p        *daemonPath
	attempts *attemptLog
}

func newLostRig(t *testing.T, p *daemonPath, hold bool) *lostRig {
	t.Helper()
	wrap := []resilient.Option{resilient.WithRetry(retry.WithInitialInterval(lostBackoff), retry.WithJitter(0))}
	if hold {
		wrap = append(wrap, resilient.WithTimeout(lostAttemptTimeout))
	}
	log := &attemptLog{}
	r := newRig(t, rigConfig{host: p.Host, inner: middleware.Intercept(log.intercept), wrap: wrap})
	return &lostRig{rig: r, p: p, attempts: log}
}

// attemptLog records the outcome of every call that reaches the driver,
// as the driver returned it.
type attemptLog struct {
	mu   sync.Mutex
	list []string
}

func (l *attemptLog) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	err := next(ctx)
	l.mu.Lock()
	l.list = append(l.list, string(call.Op)+" "+codeOf(err))
	l.mu.Unlock()
	return err
}

func (l *attemptLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := l.list
	l.list = nil
	return list
}

// lostCall is what one call did through a fault on its request or answer.
type lostCall struct {
	err      error
	began    time.Time
	elapsed  time.Duration
	reached  int      // requests of the action that reached the daemon
	faulted  int      // requests of the action whose answer was lost or that were refused
	attempts []string // the calls that reached the driver (attempts and the retry layer's reads), with their outcome
	retries  int64
}

// do injects fault on the next request that matches action, makes call
// and returns what it did.
func (lr *lostRig) do(action func(method, path string) bool, fault hopFault, call func() error) lostCall {
	lr.p.hop.reset()
	lr.attempts.take()
	retries := lr.retries.Load()
	lr.p.hop.inject(1, action, fault)
	c := lostCall{began: time.Now()}
	c.err = call()
	c.elapsed = time.Since(c.began)
	c.reached = lr.p.hop.reached(action)
	c.faulted = lr.p.hop.count(func(q request) bool { return (q.Lost || q.Refused) && action(q.Method, q.Path) })
	c.attempts = lr.attempts.take()
	c.retries = lr.retries.Load() - retries
	return c
}

// check fails the test unless the call succeeded, its first attempt met
// the fault and failed with first, and exactly one request of its action
// reached the daemon.
func (c lostCall) check(t *testing.T, what string, first contract.Code) {
	t.Helper()
	if c.err != nil {
		t.Errorf("%s: %v; the daemon did the work, the call must succeed", what, c.err)
	}
	if c.faulted != 1 {
		t.Fatalf("%s: the fault applied to %d requests, want 1", what, c.faulted)
	}
	if len(c.attempts) == 0 || !strings.HasSuffix(c.attempts[0], " "+string(first)) {
		t.Errorf("%s: attempts %v; want the first to fail with %s", what, c.attempts, first)
	}
	if c.reached != 1 {
		t.Errorf("%s: %d requests reached the daemon, want exactly 1", what, c.reached)
	}
}

func (c lostCall) String() string {
	return fmt.Sprintf("returned %s after %v; %d request(s) reached the daemon; %d retry wait(s); attempts %v",
		codeOf(c.err), c.elapsed.Round(time.Millisecond), c.reached, c.retries, c.attempts)
}

// TestChaosLostStartAnswer lets the daemon start a one-shot container,
// waits until the container has exited, and loses the start's answer:
// the connection closed, or held until the attempt's timeout. A retry
// must not start the container again. The call succeeds, one start
// reached the daemon, and the container ran once in the call, per its log
// (which the daemon keeps across runs) and its state. In ran-before, the
// container had run and exited before the call, so only a start since the
// call began counts as this call's.
func TestChaosLostStartAnswer(t *testing.T) {
	p := newDaemonPath(t)
	ctx := testCtx(t, 3*time.Minute)
	for _, loss := range answerLosses {
		for _, ranBefore := range []bool{false, true} {
			name := loss.name
			if ranBefore {
				name += "/ran-before"
			}
			t.Run(name, func(t *testing.T) {
				lr := newLostRig(t, p, loss.hold)
				id, before := lr.oneShot(t, ctx, ranBefore)
				exitedAfter := make(chan time.Duration, 1)
				c := lr.do(isContainerAction(id, "start"), hopFault{hold: loss.hold, acted: func() {
					answered := time.Now()
					if _, err := waitExited(ctx, id); err != nil {
						t.Errorf("waiting for the one-shot container to exit: %v", err)
					}
					exitedAfter <- time.Since(answered)
				}}, func() error { return lr.d.StartContainer(ctx, id) })
				c.check(t, "StartContainer through a lost answer", loss.code)
				runs := checkRuns(t, ctx, id, before, c.began)
				t.Logf("%s: the container exited %v after the daemon answered the start; the call %s; the container ran %d time(s) in the call",
					name, (<-exitedAfter).Round(time.Millisecond), c, runs)
			})
		}
	}
}

// TestChaosLostStartRequest hangs up on a start before the daemon sees
// it: the retry must start the container, not take the failed attempt
// for one that started it. The container ran once in the call; in
// ran-before it had run and exited before the call.
func TestChaosLostStartRequest(t *testing.T) {
	p := newDaemonPath(t)
	ctx := testCtx(t, 2*time.Minute)
	for _, ranBefore := range []bool{false, true} {
		name := "created"
		if ranBefore {
			name = "ran-before"
		}
		t.Run(name, func(t *testing.T) {
			lr := newLostRig(t, p, false)
			id, before := lr.oneShot(t, ctx, ranBefore)
			c := lr.do(isContainerAction(id, "start"), hopFault{refuse: true},
				func() error { return lr.d.StartContainer(ctx, id) })
			c.check(t, "StartContainer through a refused request", contract.CodeNetwork)
			runs := checkRuns(t, ctx, id, before, c.began)
			t.Logf("%s: start refused before the daemon; the call %s; the container ran %d time(s) in the call", name, c, runs)
		})
	}
}

// TestChaosLostStopAnswer lets the daemon stop a running container and
// loses the stop's answer: the connection closed, or held until the
// attempt's timeout. The call succeeds, exactly one stop reached the
// daemon, and the container no longer runs.
func TestChaosLostStopAnswer(t *testing.T) {
	p := newDaemonPath(t)
	ctx := testCtx(t, 2*time.Minute)
	for _, loss := range answerLosses {
		t.Run(loss.name, func(t *testing.T) {
			lr := newLostRig(t, p, loss.hold)
			c, st := lr.stopThrough(t, ctx, hopFault{hold: loss.hold})
			c.check(t, "StopContainer through a lost answer", loss.code)
			t.Logf("%s: the call %s; the container is %s, exit code %d", loss.name, c, st.Status, st.ExitCode)
		})
	}
}

// TestChaosLostStopRequest hangs up on a stop before the daemon sees it:
// the retry must stop the container, which still runs.
func TestChaosLostStopRequest(t *testing.T) {
	p := newDaemonPath(t)
	ctx := testCtx(t, 2*time.Minute)
	lr := newLostRig(t, p, false)
	c, st := lr.stopThrough(t, ctx, hopFault{refuse: true})
	c.check(t, "StopContainer through a refused request", contract.CodeNetwork)
	t.Logf("stop refused before the daemon: the call %s; the container is %s, exit code %d", c, st.Status, st.ExitCode)
}

// oneShot creates a one-shot container in a session of its own, removed
// when the test ends, and the daemon then asked that nothing is left. With ranBefore it is started and has exited before
// oneShot returns; before is the number of runs so far.
func (lr *lostRig) oneShot(t *testing.T, ctx context.Context, ranBefore bool) (id string, before int) {
	t.Helper()
	sid := newSession(t)
	t.Cleanup(func() { lr.cleanupSession(sid) }) // before newSession's leak check
	inst, err := lr.d.CreateContainer(ctx, smallConfig(sid, oneShot...))
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if !ranBefore {
		return inst.ID, 0
	}
	if err := lr.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("first StartContainer: %v", err)
	}
	if _, err := waitExited(ctx, inst.ID); err != nil {
		t.Fatalf("waiting for the first run to end: %v", err)
	}
	return inst.ID, 1
}

// stopThrough starts a long-lived container in a session of its own
// (removed as oneShot's is), waits until it serves, stops it with fault on its stop or kill request,
// and returns the call and the container's state, which it checks is no
// longer running.
func (lr *lostRig) stopThrough(t *testing.T, ctx context.Context, fault hopFault) (lostCall, *container.State) {
	t.Helper()
	id := lr.serving(t, ctx)
	c := lr.do(isContainerAction(id, "stop", "kill"), fault, func() error {
		return lr.d.StopContainer(ctx, id, contract.StopOptions{Timeout: 2 * time.Second})
	})
	got, err := docker.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("inspecting the container: %v", err)
	}
	if got.State == nil || got.State.Running || got.State.Status != container.StateExited {
		t.Errorf("after the stop the daemon reports the container as %+v; want exited", got.State)
		return c, &container.State{}
	}
	return c, got.State
}

// serving starts a long-lived container in a session of its own (removed
// as oneShot's is), waits until it serves, and returns its ID.
func (lr *lostRig) serving(t *testing.T, ctx context.Context) string {
	t.Helper()
	sid := newSession(t)
	t.Cleanup(func() { lr.cleanupSession(sid) }) // before newSession's leak check
	inst, err := lr.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := lr.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if err := waitLogLine(ctx, inst.ID, servingLine); err != nil {
		t.Fatalf("waiting for the workload to serve: %v", err)
	}
	return inst.ID
}

// checkRuns fails the test unless the one-shot container id, which had run
// before times, ran exactly once more: its log holds before+1 lines, and
// the daemon reports it exited with code 0, started at or after began. It
// returns the runs since began.
func checkRuns(t *testing.T, ctx context.Context, id string, before int, began time.Time) int {
	t.Helper()
	// The daemon marks a container exited once its output is in the log.
	st, err := waitExited(ctx, id)
	if err != nil {
		t.Fatalf("waiting for the container to exit: %v", err)
	}
	lines, err := logLines(ctx, id, oneShotLine)
	if err != nil {
		t.Fatalf("reading the container's log from the daemon: %v", err)
	}
	if lines != before+1 {
		t.Errorf("the container ran %d time(s) in the call (%d log lines, %d run(s) before): want exactly 1", lines-before, lines, before)
	}
	started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
	if st.ExitCode != 0 || started.Before(began) {
		t.Errorf("the daemon reports the container %s with code %d, started at %s, the call began at %s; want exited with 0, started in the call",
			st.Status, st.ExitCode, st.StartedAt, began.UTC().Format(time.RFC3339Nano))
	}
	return lines - before
}

// waitExited polls the daemon until container id has exited, and returns
// its state.
func waitExited(ctx context.Context, id string) (*container.State, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := docker.ContainerInspect(ctx, id)
		if err != nil {
			return nil, err
		}
		if c.State != nil && c.State.Status == container.StateExited {
			return c.State, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("container %s not exited: %w", id[:12], ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitLogLine polls the daemon until the log of container id holds line.
func waitLogLine(ctx context.Context, id, line string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, err := logLines(ctx, id, line)
		if err != nil || n > 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %q in the log of %s: %w", line, id[:12], ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logLines asks the daemon directly how many lines of container id's log,
// over all its runs, are line.
func logLines(ctx context.Context, id, line string) (int, error) {
	rc, err := docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return 0, err
	}
	n := 0
	for l := range strings.Lines(out.String()) {
		if strings.TrimSuffix(l, "\n") == line {
			n++
		}
	}
	return n, nil
}
