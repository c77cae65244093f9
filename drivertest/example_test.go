package drivertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
)

func ExampleRun() {
	// In a _test.go file of a driver package:
	_ = func(t *testing.T) {
		drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
			return memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec))
		}, drivertest.WithTimeout(time.Minute))
	}
}

func ExampleFaulty() {
	ctx := context.Background()
	f := drivertest.NewFaulty(memdriver.New())

	// The first two creates fail as an engine under load would.
	busy := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "daemon busy", nil)
	f.Inject(contract.OpCreateContainer, drivertest.Fault{Count: 2, Err: busy})

	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	for attempt := 1; ; attempt++ {
		_, err := f.CreateContainer(ctx, cfg)
		fmt.Printf("attempt %d: %v\n", attempt, err)
		if !contract.IsRetryable(err) {
			break
		}
	}
	fmt.Println("calls:", f.Calls(contract.OpCreateContainer))
	// Output:
	// attempt 1: CreateContainer: daemon busy
	// attempt 2: CreateContainer: daemon busy
	// attempt 3: <nil>
	// calls: 3
}

// With After, the wrapped driver acts but the caller sees an error: the
// response of a create that succeeded is lost, as on a dropped connection.
func ExampleFault_after() {
	ctx := context.Background()
	d := memdriver.New()
	f := drivertest.NewFaulty(d)
	lost := contract.NewError(contract.CodeNetwork, contract.OpCreateContainer, "", "connection reset", nil)
	f.Inject(contract.OpCreateContainer, drivertest.Fault{Nth: 1, Count: 1, Err: lost, After: true})

	_, err := f.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	all, _ := d.ListContainers(ctx, contract.ContainerFilter{})
	fmt.Println(err)
	fmt.Println("containers:", len(all))
	// Output:
	// CreateContainer: connection reset
	// containers: 1
}
