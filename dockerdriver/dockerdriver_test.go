package dockerdriver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	"github.com/resilientdriver/resilient/dockerdriver"
)

// The images scripts/provision.sh builds.
const (
	workloadImage = "resilient-workload:latest"
	healthImage   = "resilient-workload:health"
)

// testLabel marks volumes and networks the tests create, with the session
// as value, so that leftovers can be found.
const testLabel = "test.resilientdriver.session"

// docker is a client independent of the driver, for checking what the
// driver did.
var docker *client.Client

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dockerdriver tests: cannot make a Docker client: %v\n", err)
		return 1
	}
	if err := checkDaemon(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "dockerdriver tests: FAIL: %v\nCI must provide a Docker daemon and the test images: run scripts/provision.sh before the tests.\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "dockerdriver tests: FAIL: %v\nThese are integration tests against a real Docker daemon. Run scripts/provision.sh "+
				"(as root on Debian it installs and starts dockerd and builds the test images), or start Docker yourself, "+
				"set DOCKER_HOST if needed and run scripts/provision.sh for the images.\n", err)
		}
		docker.Close()
		return 1
	}
	code := m.Run()
	docker.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "dockerdriver tests: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	return code
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
	return nil
}

// newDriver returns a driver closed when the test ends.
func newDriver(t *testing.T, opts ...dockerdriver.Option) *dockerdriver.Driver {
	t.Helper()
	d, err := dockerdriver.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// newSession returns a session ID unique to the test and checks, when the
// test ends, that no container, volume or network of it is left (removing
// any it finds).
func newSession(t *testing.T) string {
	return newSessionWithPrefix(t, dockerdriver.DefaultLabelPrefix)
}

func newSessionWithPrefix(t *testing.T, prefix string) string {
	t.Helper()
	return newSessionOn(t, docker, prefix)
}

// newSessionOn is newSessionWithPrefix on the engine cli talks to.
func newSessionOn(t *testing.T, cli *client.Client, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 30 {
		name = name[:30]
	}
	sid := "t-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { assertNothingLeft(t, cli, prefix, sid) })
	return sid
}

func assertNothingLeft(t *testing.T, cli *client.Client, prefix, sid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", prefix+".session="+sid))})
	if err != nil {
		t.Errorf("listing leftovers: %v", err)
	}
	for _, c := range cs {
		t.Errorf("container %s (%s) of session %s left behind", c.ID[:12], c.State, sid)
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	for _, f := range []filters.Args{
		filters.NewArgs(filters.Arg("label", prefix+".session="+sid)),
		filters.NewArgs(filters.Arg("label", testLabel+"="+sid)),
	} {
		vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err != nil {
			t.Errorf("listing leftovers: %v", err)
		}
		for _, v := range vs.Volumes {
			t.Errorf("volume %s of session %s left behind", v.Name, sid)
			_ = cli.VolumeRemove(ctx, v.Name, true)
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+sid))})
	if err != nil {
		t.Errorf("listing leftovers: %v", err)
	}
	for _, n := range ns {
		t.Errorf("network %s of session %s left behind", n.Name, sid)
		_ = cli.NetworkRemove(ctx, n.ID)
	}
}

// smallConfig is a secure config with small limits that runs the workload
// with args (its default "serve" when none).
func smallConfig(sid string, args ...string) contract.ContainerConfig {
	cfg := contract.NewContainerConfig(sid, workloadImage)
	cfg.Resources = contract.ResourceLimits{CPU: 0.5, Memory: 64, Disk: 16, PIDs: 64}
	if len(args) > 0 {
		cfg.Command = args
	}
	return cfg
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create creates a container and removes it through the driver when the
// test ends.
func create(t *testing.T, ctx context.Context, d *dockerdriver.Driver, cfg contract.ContainerConfig) contract.ContainerInstance {
	t.Helper()
	inst, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() { removeQuietly(t, d, inst.ID) })
	return inst
}

func removeQuietly(t *testing.T, d *dockerdriver.Driver, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.RemoveContainer(ctx, id); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
		t.Errorf("RemoveContainer(%s): %v", id, err)
	}
}

func start(t *testing.T, ctx context.Context, d *dockerdriver.Driver, id string) {
	t.Helper()
	if err := d.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

// waitExit waits until the container no longer runs and returns its exit
// code, asking the daemon directly.
func waitExit(t *testing.T, ctx context.Context, id string) int64 {
	t.Helper()
	waitCh, errCh := docker.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-waitCh:
		return r.StatusCode
	case err := <-errCh:
		t.Fatalf("ContainerWait: %v", err)
	}
	return 0
}

func inspect(t *testing.T, ctx context.Context, id string) container.InspectResponse {
	t.Helper()
	c, err := docker.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("ContainerInspect: %v", err)
	}
	return c
}

// wantCode fails the test unless err is a *contract.DriverError of code
// with the given retryable flag.
func wantCode(t *testing.T, what string, err error, code contract.Code, retryable bool) {
	t.Helper()
	var de *contract.DriverError
	if !errors.As(err, &de) {
		t.Errorf("%s: error = %v, want a *contract.DriverError %s", what, err, code)
		return
	}
	if de.Code != code {
		t.Errorf("%s: code = %s, want %s (error: %v)", what, de.Code, code, err)
	}
	if !errors.Is(err, &contract.DriverError{Code: code}) {
		t.Errorf("%s: errors.Is(err, %s) = false", what, code)
	}
	if got := contract.IsRetryable(err); got != retryable {
		t.Errorf("%s: IsRetryable = %v, want %v (error: %v)", what, got, retryable, err)
	}
	if de.Op == "" {
		t.Errorf("%s: Op is not set (error: %v)", what, err)
	}
}
