package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
)

func Example() {
	// A driver whose daemon cannot be reached.
	base := failing(contract.OpStartContainer, contract.NewError(contract.CodeNetwork, contract.OpStartContainer, "", "", nil))
	d := breaker.New(
		breaker.WithConsecutiveFailures(3),
		breaker.WithOpenTimeout(10*time.Second),
	)(base)

	ctx := context.Background()
	for range 4 {
		err := d.StartContainer(ctx, "web-1")
		fmt.Println(err)
		if errors.Is(err, contract.ErrCircuitOpen) {
			fmt.Println("retry after", contract.RetryAfter(err).Round(time.Second))
		}
	}
	fmt.Println("driver calls:", base.Calls(contract.OpStartContainer))
	// Output:
	// StartContainer: container engine unreachable
	// StartContainer: container engine unreachable
	// StartContainer: container engine unreachable
	// StartContainer web-1: circuit open after backend failures
	// retry after 10s
	// driver calls: 3
}

func Example_healthCheck() {
	base := failing(contract.OpCreateContainer, contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "", nil))
	d := breaker.New(breaker.WithConsecutiveFailures(1))(base)

	ctx := context.Background()
	d.CreateContainer(ctx, contract.ContainerConfig{Image: "alpine:3"})

	// HealthCheck still reaches the driver, and its report names what is
	// open.
	h, err := d.HealthCheck(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Status)
	fmt.Println(h.Error)
	// Output:
	// healthy
	// circuit open: CreateContainer
}

func ExampleSet_Circuits() {
	base := failing(contract.OpStopContainer, contract.NewError(contract.CodeTimeout, contract.OpStopContainer, "", "", nil))
	set := breaker.NewSet(breaker.WithConsecutiveFailures(1))
	d := set.Middleware()(base)

	d.StopContainer(context.Background(), "web-1", contract.StopOptions{})
	for _, c := range set.Circuits() {
		if c.State != breaker.Closed {
			fmt.Println(c, c.State)
		}
	}
	// Output:
	// StopContainer open
}

func ExampleWithOnStateChange() {
	base := failing(contract.OpRemoveVolume, contract.NewError(contract.CodeTimeout, contract.OpRemoveVolume, "", "", nil))
	var set *breaker.Set
	set = breaker.NewSet(
		breaker.WithConsecutiveFailures(2),
		breaker.WithOnStateChange(func(op contract.Op, key string, from, to breaker.State) {
			// Runs outside the breaker's locks: reading the Set is fine.
			fmt.Printf("%s: %v -> %v (now %v)\n", op, from, to, set.State(op, key))
		}),
	)
	d := set.Middleware()(base)
	for range 3 {
		d.RemoveVolume(context.Background(), "cache")
	}
	// Output:
	// RemoveVolume: closed -> open (now open)
}

func ExampleWithKey() {
	errPull := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "image pull failed", nil)
	base := newStub(func(_ context.Context, op contract.Op) error { return errPull })
	set := breaker.NewSet(breaker.WithKey(breaker.KeyImage), breaker.WithConsecutiveFailures(1))
	d := set.Middleware()(base)

	ctx := context.Background()
	d.CreateContainer(ctx, contract.ContainerConfig{Image: "registry.example/broken:1"})
	for _, c := range set.Circuits() {
		if c.Key != "" {
			fmt.Println(c, c.State)
		}
	}
	fmt.Println(set.State(contract.OpCreateContainer, ""))
	// Output:
	// CreateContainer[registry.example/broken:1] open
	// closed
}
