package dockerdriver_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// A container's whole life through the driver. It needs a Docker daemon, so
// it is compiled but not run by go test.
func Example() {
	ctx := context.Background()
	d, err := dockerdriver.New() // DOCKER_HOST, else the default socket
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	cfg := contract.NewContainerConfig("session-42", "resilient-workload:latest")
	cfg.Command = []string{"print", "3"}
	c, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer d.RemoveContainer(ctx, c.ID)
	if err := d.StartContainer(ctx, c.ID); err != nil {
		log.Fatal(err)
	}
	if err := d.StopContainer(ctx, c.ID, contract.StopOptions{Timeout: 5 * time.Second}); err != nil {
		log.Fatal(err)
	}
	out, err := d.GetContainerLogs(ctx, c.ID, contract.LogOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
}

// Options for a remote daemon, a private registry and a stricter pull.
func ExampleNew() {
	d, err := dockerdriver.New(
		dockerdriver.WithHost("tcp://127.0.0.1:2375"),
		dockerdriver.WithPullPolicy(dockerdriver.PullNever),
		dockerdriver.WithLogLimit(1<<20),
		dockerdriver.WithDefaultStopTimeout(3*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	h, _ := d.HealthCheck(context.Background())
	fmt.Println(h.Status)
}

// A create retried after a lost response returns the first container.
func ExampleDriver_CreateContainer_idempotent() {
	d, err := dockerdriver.New()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx := contract.WithIdempotencyKey(context.Background(), "order-7-worker")
	cfg := contract.NewContainerConfig("session-42", "resilient-workload:latest")
	first, _ := d.CreateContainer(ctx, cfg)
	again, _ := d.CreateContainer(ctx, cfg) // e.g. a retry after a timeout
	fmt.Println(first.ID == again.ID)
}

// Remove what sessions that ended left behind, and anything older than a day.
func ExampleDriver_Reap() {
	d, err := dockerdriver.New()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	rep, err := d.Reap(context.Background(), dockerdriver.ReapOptions{
		LiveSessions: []string{"session-42", "session-43"},
		MaxAge:       24 * time.Hour,
	})
	if err != nil {
		log.Print(err)
	}
	fmt.Println(len(rep.Containers), "containers removed")
}
