package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

const dockerdPidFile = "/var/run/docker.pid"

// restartable says why the daemon cannot be restarted by
// scripts/dockerd-restart.sh, or returns "".
func restartable() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	b, err := os.ReadFile(dockerdPidFile)
	if err != nil {
		return "no " + dockerdPidFile + ": the daemon was not started by scripts/provision.sh"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "bad pid file"
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
		return fmt.Sprintf("pid %d is not a running dockerd", pid)
	}
	if h := docker.DaemonHost(); h != "unix:///var/run/docker.sock" {
		return "the tests talk to " + h + ", not the local dockerd"
	}
	return ""
}

// TestChaosDaemonRestart restarts the real dockerd (SIGTERM, then the same
// command line) in the middle of a session, while calls keep coming.
// Calls during the restart fail with retryable errors or succeed through
// retries; once the daemon answers again the next calls succeed; the
// session's container survives the restart (stopped by the daemon's
// shutdown) and is started, stopped and removed cleanly; nothing leaks.
func TestChaosDaemonRestart(t *testing.T) {
	if why := restartable(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot restart the daemon in CI: %s", why)
		}
		t.Skipf("cannot restart the daemon here: %s", why)
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "dockerd-restart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the daemon must answer again before the test ends.
	t.Cleanup(func() { ensureDaemon(t) })

	const openTimeout = 2 * time.Second
	r := newRig(t, rigConfig{wrap: []resilient.Option{
		resilient.WithRetry(retry.WithMaxAttempts(5), retry.WithInitialInterval(100*time.Millisecond),
			retry.WithMaxInterval(time.Second), retry.WithMaxElapsedTime(5*time.Second)),
		resilient.WithBreaker(breaker.WithOpenTimeout(openTimeout)),
	}})
	ctx := testCtx(t, 5*time.Minute)
	sid := newSession(t)
	defer r.cleanupSession(sid)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}

	// The restart, in the background.
	var out bytes.Buffer
	done := make(chan error, 1)
	began := time.Now()
	// Not bound to ctx: a script killed between the stop and the start
	// would leave the machine without a daemon.
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "RESILIENT_DOCKERD_DOWN=2") // a visible outage
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()

	// Meanwhile: queries of the session's container, and whole sessions
	// of short-lived containers, back to back.
	var (
		wg         sync.WaitGroup
		stop       = make(chan struct{})
		sessions   atomic.Int64
		failed     []error
		failedMu   sync.Mutex
		lastFail   atomic.Int64 // unix nanos of the last failed call
		firstFail  atomic.Int64
		queryStats = newStats()
	)
	noteFail := func() {
		now := time.Now().UnixNano()
		firstFail.CompareAndSwap(0, now)
		lastFail.Store(now)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := r.session(ctx, fmt.Sprintf("%s-s%d", sid, i), sessionPlan{stop: time.Second})
			sessions.Add(1)
			if err != nil {
				noteFail()
				failedMu.Lock()
				failed = append(failed, err)
				failedMu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			start := time.Now()
			_, err := r.d.GetContainer(ctx, inst.ID)
			queryStats.observe(contract.OpGetContainer, time.Since(start), err)
			if err != nil {
				noteFail()
			}
			start = time.Now()
			_, err = r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
			queryStats.observe(contract.OpListContainers, time.Since(start), err)
			if err != nil {
				noteFail()
			}
		}
	}()

	var restartErr error
	select {
	case restartErr = <-done:
	case <-ctx.Done():
		restartErr = ctx.Err()
	}
	back := time.Now()
	// Keep the load on for a moment after the daemon is back.
	time.Sleep(openTimeout + time.Second)
	close(stop)
	wg.Wait()
	t.Logf("scripts/dockerd-restart.sh (%v):\n%s", back.Sub(began).Round(time.Millisecond), strings.TrimSpace(out.String()))
	if restartErr != nil {
		t.Fatalf("restart failed: %v", restartErr)
	}

	// The next calls succeed at once.
	recovered := time.Now()
	got, err := r.d.GetContainer(ctx, inst.ID)
	if err != nil {
		// The circuit may still be open from the outage: wait it out once.
		time.Sleep(openTimeout)
		got, err = r.d.GetContainer(ctx, inst.ID)
	}
	if err != nil || got == nil {
		t.Fatalf("GetContainer after the restart = %v, %v", got, err)
	}
	recovery := time.Since(recovered)

	// The container survived, stopped by the daemon's shutdown.
	c, err := docker.ContainerInspect(ctx, inst.ID)
	if err != nil {
		t.Fatalf("the session's container is gone after the restart: %v", err)
	}
	t.Logf("session container after the restart: docker state %s (exit %d); driver status %s, state %s",
		c.State.Status, c.State.ExitCode, got.Status, got.State)
	if c.State.Running {
		if !c.HostConfig.RestartPolicy.IsNone() || isLiveRestore(ctx) {
			t.Logf("it kept running (restart policy or live restore)")
		} else {
			t.Errorf("container %s runs after a daemon restart without live restore", inst.ID[:12])
		}
	} else if got.State != contract.StateTerminated {
		t.Errorf("driver reports state %s for a container that does not run", got.State)
	}
	if err := r.d.StartContainer(ctx, inst.ID); err != nil {
		t.Errorf("StartContainer after the restart: %v", err)
	}
	if err := r.d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: time.Second}); err != nil {
		t.Errorf("StopContainer after the restart: %v", err)
	}
	if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Errorf("RemoveContainer after the restart: %v", err)
	}
	if err := r.session(ctx, sid+"-after", sessionPlan{waitLogs: 20, checkOne: true, stop: time.Second}); err != nil {
		t.Errorf("a whole session after the restart: %v", err)
	}

	// What failed during the restart failed clearly: a retryable error,
	// or one that says the daemon refused because it was going away.
	failedMu.Lock()
	codes := map[string]int{}
	for _, err := range failed {
		codes[codeOf(err)]++
		if !contract.IsRetryable(err) {
			t.Errorf("a session failed with an error that is not retryable: %v", err)
		}
	}
	failedMu.Unlock()
	var b strings.Builder
	queryStats.table(&b, nil)
	window := "none"
	if f := firstFail.Load(); f != 0 {
		window = fmt.Sprintf("%v (first failure %v after the restart began)",
			time.Duration(lastFail.Load()-f).Round(time.Millisecond), time.Unix(0, f).Sub(began).Round(time.Millisecond))
	}
	t.Logf("queries during the restart:\n%s", b.String())
	r.report(t, fmt.Sprintf("dockerd restart: %d sessions during it, %d failed %v; calls failed for %s; next call after the daemon answered: %v",
		sessions.Load(), len(failed), codes, window, recovery.Round(time.Millisecond)))
}

func isLiveRestore(ctx context.Context) bool {
	info, err := docker.Info(ctx)
	return err == nil && info.LiveRestoreEnabled
}

// ensureDaemon waits until the daemon answers; when it does not and no
// dockerd runs, it starts one with scripts/provision.sh.
func ensureDaemon(t testing.TB) {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := docker.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if _, err := os.Stat(dockerdPidFile); err != nil {
			t.Logf("no dockerd runs; starting one with scripts/provision.sh")
			cmd := exec.Command("bash", filepath.Join("..", "scripts", "provision.sh"))
			cmd.Env = append(os.Environ(), "RESILIENT_SKIP_IMAGES=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("provision.sh: %v\n%s", err, out)
			}
		}
		time.Sleep(time.Second)
	}
	t.Errorf("the daemon does not answer 90s after the restart test")
}
