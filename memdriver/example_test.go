package memdriver_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
)

func Example() {
	ctx := context.Background()
	d := memdriver.New()

	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	if err != nil {
		panic(err)
	}
	fmt.Println(inst.Status, inst.State)

	if err := d.StartContainer(ctx, inst.ID); err != nil {
		panic(err)
	}
	healthy, _ := d.IsContainerHealthy(ctx, inst.ID)
	fmt.Println("healthy:", healthy)

	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: 2 * time.Second}); err != nil {
		panic(err)
	}
	got, _ := d.GetContainer(ctx, inst.ID)
	fmt.Println(got.Status, got.State)

	logs, _ := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	fmt.Print(logs)

	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		panic(err)
	}
	got, err = d.GetContainer(ctx, inst.ID)
	fmt.Println(got, err)
	// Output:
	// created terminated
	// healthy: true
	// stopped terminated
	// memdriver: started alpine:3.20
	// memdriver: stopped
	// <nil> <nil>
}

// Errors are *contract.DriverError values with the contract's codes.
func Example_errors() {
	ctx := context.Background()
	d := memdriver.New()

	err := d.StartContainer(ctx, "no-such-container")
	fmt.Println(err)
	fmt.Println(contract.CodeOf(err), contract.IsRetryable(err))

	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Network = "backend"
	_, err = d.CreateContainer(ctx, cfg)
	fmt.Println(contract.CodeOf(err))
	// Output:
	// StartContainer no-such-container: no such container
	// CONTAINER_NOT_FOUND false
	// NETWORK_NOT_FOUND
}

// A create retried with the same idempotency key returns the container the
// first attempt made.
func Example_idempotency() {
	ctx := contract.WithIdempotencyKey(context.Background(), "create-42")
	d := memdriver.New()
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")

	first, _ := d.CreateContainer(ctx, cfg)
	retry, _ := d.CreateContainer(ctx, cfg)
	all, _ := d.ListContainers(ctx, contract.ContainerFilter{SessionID: "session-1"})
	fmt.Println(first.ID == retry.ID, len(all))
	// Output: true 1
}

// WriteLog and a fake clock make logs deterministic.
func ExampleDriver_WriteLog() {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	d := memdriver.New(memdriver.WithClock(func() time.Time { return now }))
	inst, _ := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))

	_ = d.WriteLog(inst.ID, memdriver.Stdout, "listening on :8080")
	now = now.Add(time.Second)
	_ = d.WriteLog(inst.ID, memdriver.Stderr, "warning: cache cold\nready")

	logs, _ := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Tail: 2, Timestamps: true})
	fmt.Print(logs)
	// Output:
	// 2026-05-01T12:00:01.000000000Z warning: cache cold
	// 2026-05-01T12:00:01.000000000Z ready
}

// A followed stream delivers output until the container stops.
func ExampleDriver_StreamContainerLogs() {
	ctx := context.Background()
	d := memdriver.New()
	inst, _ := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	_ = d.StartContainer(ctx, inst.ID)

	stream, err := d.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{Follow: true})
	if err != nil {
		panic(err)
	}
	defer stream.Close()

	_ = d.WriteLog(inst.ID, memdriver.Stdout, "working")
	_ = d.StopContainer(ctx, inst.ID, contract.StopOptions{})

	out, err := io.ReadAll(stream) // returns once the container has stopped
	fmt.Print(string(out))
	fmt.Println(err)
	// Output:
	// memdriver: started alpine:3.20
	// working
	// memdriver: stopped
	// <nil>
}

func ExampleDriver_HealthCheck() {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	now := start
	d := memdriver.New(memdriver.WithClock(func() time.Time { return now }))
	a, _ := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	_, _ = d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	_ = d.StartContainer(ctx, a.ID)
	now = start.Add(time.Minute)

	h, _ := d.HealthCheck(ctx)
	fmt.Println(h.Status, h.Uptime, h.Containers.Total, h.Containers.Running, h.Containers.Stopped)
	// Output: healthy 1m0s 2 1 1
}
