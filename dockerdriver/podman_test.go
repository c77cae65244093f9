package dockerdriver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/drivertest"
)

// podmanHostEnv names the Podman service the Podman tests run against:
// scripts/test.sh sets it from scripts/podman.sh's output.
const podmanHostEnv = "RESILIENT_PODMAN_HOST"

// podmanHost returns the address of the Podman service, after checking
// that it answers as Podman. Without it the test fails under CI and is
// skipped elsewhere.
func podmanHost(t *testing.T) string {
	t.Helper()
	host := os.Getenv(podmanHostEnv)
	if host == "" {
		msg := podmanHostEnv + " is not set: run `eval \"$(scripts/podman.sh)\"` and set " +
			podmanHostEnv + "=$DOCKER_HOST (scripts/test.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the Podman tests: " + msg)
		}
		t.Skip(msg)
	}
	cli := podmanClient(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatalf("no Podman service answers at %s: %v", host, err)
	}
	podman := false
	for _, c := range v.Components {
		podman = podman || c.Name == "Podman Engine"
	}
	if !podman {
		t.Fatalf("%s=%s answers, but not as Podman (components %+v)", podmanHostEnv, host, v.Components)
	}
	for _, ref := range []string{workloadImage, healthImage} {
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			t.Fatalf("test image %s is missing on Podman (run scripts/podman.sh): %v", ref, err)
		}
	}
	t.Cleanup(func() { assertNothingManagedLeft(t, cli) })
	return host
}

// podmanClient is a client of the Podman service independent of the
// drivers, closed when the test ends.
func podmanClient(t *testing.T, host string) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("client for %s: %v", host, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// assertNothingManagedLeft asks the engine directly that no container,
// volume or network with the driver's managed label is left, and removes
// any it finds.
func assertNothingManagedLeft(t *testing.T, cli *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	managed := dockerdriver.DefaultLabelPrefix + ".managed=true"
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filterLabel(managed)})
	if err != nil {
		t.Errorf("listing leftovers: %v", err)
	}
	for _, c := range cs {
		t.Errorf("container %s %v (%s) left behind on Podman", c.ID[:12], c.Names, c.State)
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filterLabel(managed)})
	if err != nil {
		t.Errorf("listing leftovers: %v", err)
	}
	for _, v := range vs.Volumes {
		t.Errorf("volume %s left behind on Podman", v.Name)
		_ = cli.VolumeRemove(ctx, v.Name, true)
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: filterLabel(managed)})
	if err != nil {
		t.Errorf("listing leftovers: %v", err)
	}
	for _, n := range ns {
		t.Errorf("network %s left behind on Podman", n.Name)
		_ = cli.NetworkRemove(ctx, n.Name)
	}
}

// TestPodmanConformance runs the conformance suite against the real
// Podman service, with the secure defaults.
func TestPodmanConformance(t *testing.T) {
	host := podmanHost(t)
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return newDriver(t, dockerdriver.WithHost(host))
	}, drivertest.WithImage(workloadImage))
}

// TestPodmanConformanceWrapped: the recommended chain around the driver
// on Podman keeps every promise of the contract.
func TestPodmanConformanceWrapped(t *testing.T) {
	host := podmanHost(t)
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return resilient.Wrap(newDriver(t, dockerdriver.WithHost(host)))
	}, drivertest.WithImage(workloadImage))
}

// TestPodmanSecureDefaults creates a container with the secure defaults on
// Podman, runs it, and checks what its process sees: the user, a
// read-only root with /tmp the only writable place, no capabilities, no
// new privileges; and that HealthCheck names Podman.
func TestPodmanSecureDefaults(t *testing.T) {
	host := podmanHost(t)
	d := newDriver(t, dockerdriver.WithHost(host))
	ctx := ctxFor(t)
	cfg := contract.NewContainerConfig("podman-secure-"+randSuffix(), workloadImage)
	cfg.Command = []string{"whoami"}
	inst, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateContainer with the secure defaults: %v", err)
	}
	defer removeQuietly(t, d, inst.ID)
	if inst.Image != workloadImage {
		t.Errorf("Image = %q, want %q as given", inst.Image, workloadImage)
	}
	start(t, ctx, d, inst.ID)
	cli := podmanClient(t, host)
	waitCh, errCh := cli.ContainerWait(ctx, inst.ID, container.WaitConditionNotRunning)
	select {
	case r := <-waitCh:
		if r.StatusCode != 0 {
			t.Fatalf("whoami exited %d", r.StatusCode)
		}
	case err := <-errCh:
		t.Fatalf("ContainerWait: %v", err)
	}
	logs, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"uid=65534\n", "gid=65534\n", "rootfs_writable=no", "CapEff: 0000000000000000\n", "NoNewPrivs: 1\n"} {
		if !strings.Contains(logs, want) {
			t.Errorf("whoami output lacks %q:\n%s", want, logs)
		}
	}
	h, err := d.HealthCheck(ctx)
	if err != nil || h.Status != contract.Healthy || !strings.HasPrefix(h.Version, "Podman 4.") {
		t.Errorf("HealthCheck = %+v, %v; want healthy, Version \"Podman 4.x\"", h, err)
	}
}

func filterLabel(kv string) filters.Args { return filters.NewArgs(filters.Arg("label", kv)) }

func randSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestPodmanReapSkipsNetworkInUse is TestReapSkipsNetworkInUse on Podman,
// which removes a network named by its id from under its containers.
func TestPodmanReapSkipsNetworkInUse(t *testing.T) {
	reapNetworkInUse(t, podmanClient(t, podmanHost(t)))
}

// TestPodmanConcurrentVolumeCreates is TestConcurrentVolumeCreates on
// Podman, which also hands a create of a name in use the volume it has.
func TestPodmanConcurrentVolumeCreates(t *testing.T) {
	concurrentVolumeCreates(t, podmanClient(t, podmanHost(t)))
}
