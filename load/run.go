package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

const (
	// labelPrefix is the drivers' label prefix, so that what a run creates
	// is told apart from what other tests on the same daemon create.
	labelPrefix = "io.resilientdriver.load"
	// rowLabel, a label of the caller's, names the row a container
	// belongs to, for the sweeps and the engine's check.
	rowLabel = "load.row"
	// firstLine is what the workload's serve command prints first.
	firstLine = "workload: serving"
	// fastRefusal is how soon a refusal must come to count as immediate.
	fastRefusal = 100 * time.Millisecond
	// cleanupTime bounds the removal of one failed session's containers.
	cleanupTime = 2 * time.Minute
)

// config says what a run measures.
type config struct {
	Bursts         []int         // burst sizes run without a deadline
	DeadlineBursts []int         // burst sizes run with Deadline per session
	Deadline       time.Duration // 0: no deadline rows
	Drivers        []string      // "bare", "wrap"
	Poll           time.Duration // status poller interval
	Logs           string        // "poll" or "stream"
	LogPoll        time.Duration // sleep between log reads
	Stop           time.Duration // stop grace period
	Idle           time.Duration // poller time before each burst
	Settle         time.Duration // pause between rows (and after a warm-up burst)
	Warm           int           // sessions of an unmeasured burst before each row, through the same driver
	Image          string
	// Progress, when set, is told about each row as it ends.
	Progress func(format string, args ...any)
}

func defaultConfig() config {
	return config{
		Bursts:   []int{50, 150},
		Deadline: 12 * time.Second,
		Drivers:  []string{"bare", "wrap"},
		Poll:     25 * time.Millisecond,
		Logs:     "poll",
		LogPoll:  100 * time.Millisecond,
		Stop:     2 * time.Second,
		Idle:     2 * time.Second,
		Settle:   3 * time.Second,
		Image:    "resilient-workload:latest",
	}
}

func (c config) check() error {
	for _, d := range c.Drivers {
		if d != "bare" && d != "wrap" {
			return fmt.Errorf("unknown driver %q: bare or wrap", d)
		}
	}
	if c.Logs != "poll" && c.Logs != "stream" {
		return fmt.Errorf("unknown -logs %q: poll or stream", c.Logs)
	}
	if c.Poll <= 0 || c.LogPoll <= 0 || c.Deadline < 0 || c.Warm < 0 {
		return errors.New("intervals must be positive, the deadline and -warm not negative")
	}
	if len(c.rows()) == 0 {
		return errors.New("nothing to run: no bursts or no drivers")
	}
	return nil
}

// rowSpec is one row of the table.
type rowSpec struct {
	Burst    int
	Deadline time.Duration
	Driver   string
}

// rows returns the rows in the order they run: every burst without a
// deadline, then the deadline bursts, each with every driver, bare first.
func (c config) rows() []rowSpec {
	var rows []rowSpec
	add := func(burst int, dl time.Duration) {
		for _, d := range c.Drivers {
			rows = append(rows, rowSpec{burst, dl, d})
		}
	}
	for _, b := range c.Bursts {
		add(b, 0)
	}
	if c.Deadline > 0 {
		for _, b := range c.DeadlineBursts {
			add(b, c.Deadline)
		}
	}
	return rows
}

func (c config) describe() string {
	return fmt.Sprintf("image %s; logs %s (every %v); stop grace %v; status read every %v; %v idle reads before each burst; GOMAXPROCS %d",
		c.Image, c.Logs, c.LogPoll, c.Stop, c.Poll, c.Idle, runtime.GOMAXPROCS(0))
}

// run measures every row of cfg on the daemon and checks through the
// engine, after each row and at the end, that nothing it created remains.
func run(ctx context.Context, cfg config) (*report, error) {
	eng, err := newEngine(ctx, cfg.Image)
	if err != nil {
		return nil, err
	}
	defer eng.close()
	rep := &report{Engine: eng.version, CPUs: runtime.NumCPU(), Settings: cfg.describe(), Started: time.Now()}
	if stale, err := eng.leftovers(ctx, ""); err != nil {
		return nil, err
	} else if len(stale) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("removed %d containers an earlier run left: %s", len(stale), strings.Join(stale, ", ")))
	}
	runID := randHex(4)
	rows := cfg.rows()
	for i, spec := range rows {
		if i > 0 {
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(cfg.Settle):
			}
		}
		r, err := runRow(ctx, cfg, spec, fmt.Sprintf("load-%s-%d", runID, i), eng)
		if err != nil {
			return rep, fmt.Errorf("row %d of %d (burst %d, %s): %w", i+1, len(rows), spec.Burst, spec.Driver, err)
		}
		rep.Rows = append(rep.Rows, r)
		if cfg.Progress != nil {
			cfg.Progress("row %d/%d: %s", i+1, len(rows), r.oneLine())
		}
	}
	rep.derive()
	left, err := eng.leftovers(ctx, "")
	if err != nil {
		return rep, err
	}
	rep.Leftovers = left
	rep.Finished = time.Now()
	return rep, nil
}

// session is what one session did.
type session struct {
	ID      string        // the container's, once created
	Err     error         // nil: done
	Step    string        // the step that failed
	Elapsed time.Duration // from the burst's start to the outcome
	Steps   [numSteps]time.Duration
	Reads   int // log reads until the first line
	Cleanup error
}

// The steps of a session.
const (
	stepCreate = iota
	stepStart
	stepFirstLine
	stepStop
	stepRemove
	numSteps
)

var stepNames = [numSteps]string{"create", "start", "first line", "stop", "remove"}

// runRow runs one burst through a fresh driver (fresh circuits and limits
// for Wrap) and the poller beside it.
func runRow(ctx context.Context, cfg config, spec rowSpec, prefix string, eng *engine) (*rowResult, error) {
	base, err := dockerdriver.New(dockerdriver.WithLabelPrefix(labelPrefix))
	if err != nil {
		return nil, err
	}
	defer base.Close()
	var d contract.ContainerDriver = base
	if spec.Driver == "wrap" {
		d = resilient.Wrap(base)
	}
	res := &rowResult{Burst: spec.Burst, Driver: spec.Driver, Deadline: spec.Deadline}
	labels := map[string]string{rowLabel: prefix}

	// The poller's container, created and running before the burst.
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	pcfg := contract.NewContainerConfig(prefix+"-poller", cfg.Image)
	pcfg.Labels = maps.Clone(labels)
	polled, err := d.CreateContainer(pctx, pcfg)
	if err == nil {
		err = d.StartContainer(pctx, polled.ID)
	}
	cancel()
	if err != nil {
		sweep(d, labels)
		eng.leftovers(context.Background(), prefix)
		return nil, fmt.Errorf("the poller's container: %w", err)
	}

	idle := newPoller(d, polled.ID, cfg.Poll)
	time.Sleep(cfg.Idle)
	res.idle = idle.stop()

	if cfg.Warm > 0 {
		// A burst before the measured one, through the same driver: what
		// its layers learn about the engine under load carries over.
		res.Warm = cfg.Warm
		warm, _, _ := runBurst(ctx, d, cfg, cfg.Warm, spec.Deadline, prefix+"-warm", labels, polled.ID, false)
		for _, s := range warm {
			if s.Err == nil {
				res.WarmDone++
			}
			if s.Cleanup != nil {
				res.CleanupErrors = append(res.CleanupErrors, "warm-up: "+s.Cleanup.Error())
			}
		}
		time.Sleep(cfg.Settle)
	}
	res.sessions, res.reads, res.WorkLimits = runBurst(ctx, d, cfg, spec.Burst, spec.Deadline, prefix, labels, polled.ID, spec.Driver == "wrap")

	// A create the daemon finished after its caller gave up leaves a
	// container no session knows: sweep the row's label through the
	// driver, then ask the engine.
	time.Sleep(time.Second)
	if err := removeSession(d, pcfg.SessionID, polled.ID); err != nil {
		res.CleanupErrors = append(res.CleanupErrors, "poller: "+err.Error())
	}
	if err := sweep(d, labels); err != nil {
		res.CleanupErrors = append(res.CleanupErrors, "sweep: "+err.Error())
	}
	if res.Leftovers, err = eng.leftovers(ctx, prefix); err != nil {
		return nil, err
	}
	res.summarize()
	return res, nil
}

// runBurst releases n sessions at once through d, each within deadline
// when it is not zero, with the poller reading polledID beside them, and
// returns the sessions, the poller's reads and, with sampleLimits, the
// work limit the rate limit layer reported through HealthCheck every
// second.
func runBurst(ctx context.Context, d contract.ContainerDriver, cfg config, n int, deadline time.Duration, prefix string, labels map[string]string, polledID string, sampleLimits bool) ([]session, reads, []int) {
	sessions := make([]session, n)
	gate := make(chan struct{})
	var ready, done sync.WaitGroup
	var outcomes atomic.Int64
	var start time.Time
	var p *poller
	allIn := make(chan struct{})
	for i := range sessions {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			sid := fmt.Sprintf("%s-%03d", prefix, i)
			ready.Done()
			<-gate
			s := runSession(ctx, d, cfg, deadline, sid, labels, start)
			if outcomes.Add(1) == int64(len(sessions)) {
				close(allIn)
			}
			if s.Err != nil {
				s.Cleanup = removeSession(d, sid, s.ID)
			}
			sessions[i] = s
		}()
	}
	ready.Wait()
	start = time.Now()
	p = newPoller(d, polledID, cfg.Poll)
	close(gate)
	var limits []int
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if !sampleLimits {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-allIn:
				return
			case <-tick.C:
			}
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if h, err := d.HealthCheck(hctx); err == nil && h.Limits.Work > 0 {
				limits = append(limits, h.Limits.Work)
			}
			cancel()
		}
	}()
	<-allIn
	rd := p.stop()
	<-sampled
	done.Wait()
	return sessions, rd, limits
}

// runSession runs one session through d, within deadline when it is not
// zero, and times each step from start.
func runSession(ctx context.Context, d contract.ContainerDriver, cfg config, deadline time.Duration, sid string, labels map[string]string, start time.Time) (s session) {
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	}
	step := func(i int, f func() error) bool {
		t := time.Now()
		err := f()
		s.Steps[i] = time.Since(t)
		if err != nil {
			s.Err, s.Step = err, stepNames[i]
		}
		return err == nil
	}
	defer func() { s.Elapsed = time.Since(start) }()
	cc := contract.NewContainerConfig(sid, cfg.Image)
	cc.Labels = maps.Clone(labels)
	_ = step(stepCreate, func() error {
		inst, err := d.CreateContainer(ctx, cc)
		s.ID = inst.ID
		return err
	}) &&
		step(stepStart, func() error { return d.StartContainer(ctx, s.ID) }) &&
		step(stepFirstLine, func() (err error) {
			s.Reads, err = waitFirstLine(ctx, d, cfg, s.ID)
			return err
		}) &&
		step(stepStop, func() error { return d.StopContainer(ctx, s.ID, contract.StopOptions{Timeout: cfg.Stop}) }) &&
		step(stepRemove, func() error { return d.RemoveContainer(ctx, s.ID) })
	return s
}

// errNoFirstLine is the harness's own outcome when the session's deadline
// passed while the logs, read successfully, did not show the first line
// yet, or when the log stream ended before it.
var errNoFirstLine = errors.New("the first line did not show")

// waitFirstLine reads the container's logs until the first line shows and
// returns how many reads (or streams) that took.
func waitFirstLine(ctx context.Context, d contract.ContainerDriver, cfg config, id string) (int, error) {
	if cfg.Logs == "stream" {
		ls, ok := d.(contract.LogStreamer)
		if !ok {
			return 0, fmt.Errorf("driver %s does not stream logs", d.Name())
		}
		rc, err := ls.StreamContainerLogs(ctx, id, contract.LogOptions{})
		if err != nil {
			return 1, err
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			if strings.Contains(sc.Text(), firstLine) {
				return 1, nil
			}
		}
		if err := sc.Err(); err != nil {
			return 1, err
		}
		return 1, errNoFirstLine
	}
	for n := 1; ; n++ {
		logs, err := d.GetContainerLogs(ctx, id, contract.LogOptions{})
		if err != nil {
			return n, err
		}
		if strings.Contains(logs, firstLine) {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, errNoFirstLine
		}
		select {
		case <-ctx.Done(): // one more read, which reports the deadline in the driver's terms
		case <-time.After(cfg.LogPoll):
		}
	}
}

// removeSession removes what session sid made, through d with a context
// of its own: the container it created, then any other of the session's,
// retrying what is retryable.
func removeSession(d contract.ContainerDriver, sid, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTime)
	defer cancel()
	return untilDone(ctx, func() error {
		if id != "" {
			if err := d.RemoveContainer(ctx, id); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
				return err
			}
		}
		return removeAll(ctx, d, contract.ContainerFilter{SessionID: sid})
	})
}

// sweep removes every container of d that carries labels.
func sweep(d contract.ContainerDriver, labels map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTime)
	defer cancel()
	return untilDone(ctx, func() error { return removeAll(ctx, d, contract.ContainerFilter{Label: labels}) })
}

func removeAll(ctx context.Context, d contract.ContainerDriver, f contract.ContainerFilter) error {
	list, err := d.ListContainers(ctx, f)
	if err != nil {
		return err
	}
	for _, c := range list {
		if err := d.RemoveContainer(ctx, c.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			return err
		}
	}
	return nil
}

// untilDone runs f until it succeeds, ctx ends or it fails with an error
// that is not retryable, waiting the error's RetryAfter (at least 200ms,
// at most 5s) between tries.
func untilDone(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || !contract.IsRetryable(err) {
			return err
		}
		wait := min(max(contract.RetryAfter(err), 200*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// poller reads one container's status every interval, one read at a
// time, as a status page does, and records each read.
type poller struct {
	quit  chan struct{}
	done  chan struct{}
	reads reads
}

// reads are the status reads of one phase.
type reads struct {
	Latency []time.Duration
	Failed  map[string]int // by code
	Errors  []error        // the first few that are not contract errors
}

func newPoller(d contract.ContainerDriver, id string, every time.Duration) *poller {
	p := &poller{quit: make(chan struct{}), done: make(chan struct{}), reads: reads{Failed: map[string]int{}}}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			s := time.Now()
			inst, err := d.GetContainer(ctx, id)
			p.reads.Latency = append(p.reads.Latency, time.Since(s))
			cancel()
			switch {
			case err != nil:
				p.reads.Failed[codeOf(err)]++
				if !isContractError(err) && len(p.reads.Errors) < 5 {
					p.reads.Errors = append(p.reads.Errors, err)
				}
			case inst == nil:
				p.reads.Failed["missing"]++
				if len(p.reads.Errors) < 5 {
					p.reads.Errors = append(p.reads.Errors, errors.New("GetContainer found no container for a running one"))
				}
			}
		}
	}()
	return p
}

// stop ends the poller once its read in flight returns.
func (p *poller) stop() reads {
	close(p.quit)
	<-p.done
	return p.reads
}

// codeOf names an outcome: its contract code, or the harness's own.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	if c := contract.CodeOf(err); c != "" {
		return string(c)
	}
	if errors.Is(err, errNoFirstLine) {
		return "NO_FIRST_LINE"
	}
	return fmt.Sprintf("non-contract %T", err)
}

// isContractError reports whether err is a *contract.DriverError of one of
// the contract's codes.
func isContractError(err error) bool {
	return contract.CodeOf(err).Known()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
