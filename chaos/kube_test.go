package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// The Kubernetes subset of the suite runs against the single-node cluster
// scripts/kubernetes.sh starts (scripts/test.sh exports its KUBECONFIG):
// the fault is the API server itself, killed and started again by the
// script. Under CI a missing cluster fails the tests.

// kubeEnv is the cluster under test.
type kubeEnv struct {
	kubeconfig string
	script     string // scripts/kubernetes.sh
	kubectl    string
}

func needKube(t *testing.T) *kubeEnv {
	t.Helper()
	skip := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the Kubernetes chaos tests: " + msg)
		}
		t.Skip(msg)
	}
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		skip("KUBECONFIG is not set: run `eval \"$(scripts/kubernetes.sh)\"` (scripts/test.sh does)")
	}
	script, err := filepath.Abs("../scripts/kubernetes.sh")
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		skip("kubectl is not on PATH: eval the output of scripts/kubernetes.sh")
	}
	e := &kubeEnv{kubeconfig: kc, script: script, kubectl: kubectl}
	if out, err := e.run(context.Background(), "get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
		skip(fmt.Sprintf("the cluster of %s is not ready: %v %s", kc, err, out))
	}
	return e
}

// run runs kubectl with args against the cluster, bypassing the driver.
func (e *kubeEnv) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// namespace makes a namespace for the test; when the test ends it checks
// through the API server that no pod, claim or policy is left in it, and
// deletes it.
func (e *kubeEnv) namespace(t *testing.T) string {
	t.Helper()
	ns := "chaos-" + strings.ToLower(randomSuffix())
	if out, err := e.run(context.Background(), "create", "namespace", ns); err != nil {
		t.Fatalf("creating namespace %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		// A claim deleted while the controllers reconnect to a restarted
		// API server keeps its protection finalizer for a while: what is
		// being deleted gets time to go, what is not is a leak at once.
		var left string
		leaked := false
		for deadline := time.Now().Add(2 * time.Minute); ; {
			out, err := e.run(context.Background(), "get", "pods,persistentvolumeclaims,networkpolicies", "-n", ns,
				"-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}{" "}{.metadata.deletionTimestamp}{"\n"}{end}`)
			if err != nil {
				t.Errorf("listing what is left in %s: %v: %s", ns, err, out)
				break
			}
			left = strings.TrimSpace(out)
			deleting := left != ""
			for _, line := range strings.Split(left, "\n") {
				if name, ts, _ := strings.Cut(line, " "); line != "" && ts == "" {
					t.Errorf("left behind in namespace %s (not being deleted): %s", ns, name)
					deleting, leaked = false, true
				}
			}
			if !deleting || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if left != "" && !leaked {
			t.Errorf("still being deleted in namespace %s after 2 minutes: %s", ns, strings.ReplaceAll(left, "\n", ", "))
		}
		if out, err := e.run(context.Background(), "delete", "namespace", ns, "--wait=false"); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", ns, err, out)
		}
	})
	return ns
}

func randomSuffix() string {
	return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff)
}

// TestChaosKubeAPIServerRestart kills the API server (SIGKILL) in the
// middle of sessions through resilient.Wrap(kubedriver) and starts it
// again 8s later. While it is down every failed call fails with a
// retryable error, the circuits open and answer without reaching the
// cluster; once it is back they close, sessions complete again, and
// nothing the sessions made is left, per the API server.
func TestChaosKubeAPIServerRestart(t *testing.T) {
	e := needKube(t)
	ns := e.namespace(t)
	base, err := kubedriver.New(kubedriver.WithKubeconfig(e.kubeconfig), kubedriver.WithNamespace(ns),
		kubedriver.WithCPURequestFraction(0.01), kubedriver.WithStartTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()

	var opened, closed atomic.Int32
	drv := resilient.Wrap(base, resilient.WithBreaker(
		breaker.WithConsecutiveFailures(3),
		breaker.WithOpenTimeout(2*time.Second),
		breaker.WithOnStateChange(func(op contract.Op, _ string, from, to breaker.State) {
			switch {
			case to == breaker.Open:
				opened.Add(1)
			case to == breaker.Closed:
				closed.Add(1)
			}
		})))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vol, err := drv.CreateVolume(ctx, contract.VolumeConfig{Name: "chaos-data"})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	netw, err := drv.CreateNetwork(ctx, contract.NetworkConfig{Name: "chaos-net"})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}

	// Sessions run from four workers until stop closes; a session that
	// fails leaves what it made for the sweep at the end.
	type failure struct {
		step string
		err  error
		at   time.Duration
	}
	var (
		mu       sync.Mutex
		failures []failure
		done     []time.Duration // when each completed session ended
	)
	t0 := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int32
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sid := fmt.Sprintf("chaos-kube-%d", seq.Add(1))
				step, err := kubeSession(ctx, drv, sid)
				mu.Lock()
				if err != nil {
					failures = append(failures, failure{step, err, time.Since(t0)})
				} else {
					done = append(done, time.Since(t0))
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(200 * time.Millisecond) // as a caller would back off
				}
			}
		})
	}

	// A status page reads the list every 100ms, through the same driver.
	var reads, readFailures atomic.Int32
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := drv.ListContainers(rctx, contract.ContainerFilter{})
			rcancel()
			reads.Add(1)
			if err != nil {
				readFailures.Add(1)
				mu.Lock()
				failures = append(failures, failure{"list", err, time.Since(t0)})
				mu.Unlock()
			}
		}
	})

	// The API server is killed once a session has completed, so that the
	// test compares before and after on any machine; a cluster that
	// completes none within a minute fails below.
	firstBy := time.Now().Add(time.Minute)
	for time.Now().Before(firstBy) {
		mu.Lock()
		n := len(done)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // sessions in the middle of their steps when it dies
	killedAt := time.Since(t0)
	out, err := exec.CommandContext(ctx, e.script, "restart-apiserver", "8").CombinedOutput()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("restart-apiserver: %v: %s", err, out)
	}
	backAt := time.Since(t0)
	t.Logf("API server killed at %v, ready again at %v", killedAt.Round(time.Millisecond), backAt.Round(time.Millisecond))

	// Run until two sessions have completed after the restart.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := 0
		for _, at := range done {
			if at > backAt {
				n++
			}
		}
		mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	before, after := 0, 0
	for _, at := range done {
		if at < killedAt {
			before++
		} else if at > backAt {
			after++
		}
	}
	codes := map[contract.Code]int{}
	for _, f := range failures {
		var de *contract.DriverError
		if !errors.As(f.err, &de) {
			t.Errorf("%s at %v failed with a %T, not a contract error: %v", f.step, f.at, f.err, f.err)
			continue
		}
		codes[de.Code]++
		if !contract.IsRetryable(f.err) {
			t.Errorf("%s at %v failed with %s, not retryable: %v", f.step, f.at, de.Code, f.err)
		}
	}
	t.Logf("sessions: %d completed before the kill, %d after the restart; list reads: %d, %d failed; %d calls failed, by code %v; circuits opened %d times, closed %d",
		before, after, reads.Load(), readFailures.Load(), len(failures), codes, opened.Load(), closed.Load())
	if before == 0 {
		t.Error("no session completed before the API server was killed")
	}
	if after < 2 {
		t.Errorf("%d sessions completed after the API server came back, want at least 2", after)
	}
	if opened.Load() == 0 {
		t.Error("no circuit opened while the API server was down")
	}
	if codes[contract.CodeCircuitOpen] == 0 {
		t.Error("no call failed fast with CIRCUIT_OPEN while the API server was down")
	}
	if closed.Load() == 0 {
		t.Error("no circuit closed after the API server came back")
	}

	// What failed sessions left, removed through the driver now that the
	// cluster answers; the namespace's cleanup checks through the API
	// server that nothing is left.
	left, err := drv.ListContainers(ctx, contract.ContainerFilter{})
	if err != nil {
		t.Fatalf("ListContainers after the restart: %v", err)
	}
	for _, c := range left {
		if err := drv.RemoveContainer(ctx, c.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			t.Errorf("RemoveContainer(%s) after the restart: %v", c.ID, err)
		}
	}
	if err := drv.RemoveNetwork(ctx, netw.ID); err != nil {
		t.Errorf("RemoveNetwork after the restart: %v", err)
	}
	if err := drv.RemoveVolume(ctx, vol.ID); err != nil {
		t.Errorf("RemoveVolume after the restart: %v", err)
	}
	h, err := drv.HealthCheck(ctx)
	if err != nil || h.Status != contract.Healthy {
		t.Errorf("HealthCheck after the restart = %+v, %v; want healthy", h, err)
	}
}

// kubeSession is one session: create, start, get, stop, remove. It returns
// the step that failed and its error.
func kubeSession(ctx context.Context, drv contract.ContainerDriver, sid string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	inst, err := drv.CreateContainer(sctx, contract.NewContainerConfig(sid, workloadImage))
	if err != nil {
		return "create", err
	}
	if err := drv.StartContainer(sctx, inst.ID); err != nil {
		return "start", err
	}
	if _, err := drv.GetContainer(sctx, inst.ID); err != nil {
		return "get", err
	}
	if err := drv.StopContainer(sctx, inst.ID, contract.StopOptions{Timeout: time.Second}); err != nil {
		return "stop", err
	}
	if err := drv.RemoveContainer(sctx, inst.ID); err != nil {
		return "remove", err
	}
	return "", nil
}
