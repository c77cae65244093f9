package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/contract"
)

// The images scripts/provision.sh builds.
const (
	workloadImage = "resilient-workload:latest"
	healthImage   = "resilient-workload:health"
)

// labelPrefix is the label prefix of every driver of the suite, so that
// what the suite creates is told apart from what other tests on the same
// daemon create, and the leak check can be exact.
const labelPrefix = "io.resilientdriver.chaos"

var (
	// docker is a client of the daemon that bypasses every proxy, for
	// checking what the drivers did.
	docker *client.Client
	// daemonTCP is the daemon's loopback TCP listener, the upstream of
	// the proxies.
	daemonTCP = envOr("RESILIENT_DOCKER_TCP", "127.0.0.1:2375")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: cannot make a Docker client: %v\n", err)
		return 1
	}
	if err := checkDaemon(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: FAIL: %v\n"+
			"The fault-injection suite needs a real Docker daemon that also listens on tcp://%s "+
			"(set RESILIENT_DOCKER_TCP for another address) and the workload images: run scripts/provision.sh.\n",
			err, daemonTCP)
		docker.Close()
		return 1
	}
	code := m.Run()
	docker.Close()
	if code == 0 {
		if err := goleak.Find(toxiproxyLinks...); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	return code
}

// toxiproxyLinks ignores the goroutines of Toxiproxy's links. When a
// connection through a proxy ends while a toxic holds data (a latency
// toxic, say), the link's writer exits and the toxic's stub, or the
// link's reader behind it, stays blocked on a channel send; Toxiproxy
// never reclaims them. They belong to the fault injector, not to the
// library under test, whose goroutines are all still checked.
var toxiproxyLinks = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).write"),
}

func checkDaemon() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := docker.Ping(ctx); err != nil {
		return fmt.Errorf("no Docker daemon answers at %s: %w", docker.DaemonHost(), err)
	}
	for _, ref := range []string{workloadImage, healthImage} {
		if _, err := docker.ImageInspect(ctx, ref); err != nil {
			return fmt.Errorf("test image %s is missing: %w", ref, err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+daemonTCP+"/_ping", nil)
	tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("the daemon does not answer on tcp://%s: %w", daemonTCP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tcp://%s/_ping answered %s", daemonTCP, resp.Status)
	}
	return nil
}

// newSession returns a session ID unique to the test and registers the
// leak check: when the test ends, no container, volume or network of the
// suite's label prefix may be left, as the daemon itself reports.
func newSession(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	sid := "chaos-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { assertNothingLeft(t) })
	return sid
}

// assertNothingLeft fails the test for every container, volume or network
// with the suite's managed label, and removes them so that the next test
// starts clean. It asks the daemon directly, not a driver.
func assertNothingLeft(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	managed := filters.NewArgs(filters.Arg("label", labelPrefix+".managed=true"))
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: managed})
	if err != nil {
		t.Errorf("leak check: listing containers: %v", err)
	}
	for _, c := range cs {
		t.Errorf("leak: container %s %v (%s, session %q) left behind", c.ID[:12], c.Names, c.State, c.Labels[labelPrefix+".session"])
		_ = docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	vs, err := docker.VolumeList(ctx, volume.ListOptions{Filters: managed})
	if err != nil {
		t.Errorf("leak check: listing volumes: %v", err)
	}
	for _, v := range vs.Volumes {
		t.Errorf("leak: volume %s left behind", v.Name)
		_ = docker.VolumeRemove(ctx, v.Name, true)
	}
	ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: managed})
	if err != nil {
		t.Errorf("leak check: listing networks: %v", err)
	}
	for _, n := range ns {
		t.Errorf("leak: network %s left behind", n.Name)
		_ = docker.NetworkRemove(ctx, n.ID)
	}
}

// smallConfig is the secure default config with small limits, running the
// workload with args (its default "serve" when none).
func smallConfig(sid string, args ...string) contract.ContainerConfig {
	cfg := contract.NewContainerConfig(sid, workloadImage)
	cfg.Resources = contract.ResourceLimits{CPU: 0.25, Memory: 32, Disk: 8, PIDs: 32}
	if len(args) > 0 {
		cfg.Command = args
	}
	return cfg
}

// codeOf names an error for the figures: its contract code, "ok" for nil,
// or the Go type of an error that carries no code.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	if c := contract.CodeOf(err); c != "" {
		return string(c)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "context.DeadlineExceeded"
	}
	return fmt.Sprintf("%T", err)
}

// testCtx returns a context that ends when the test does, bounded by d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// containerListOptions selects every container of session sid.
func containerListOptions(sid string) container.ListOptions {
	return container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", labelPrefix+".session="+sid))}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
