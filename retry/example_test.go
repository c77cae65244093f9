package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
)

func Example() {
	ctx := context.Background()
	mem := memdriver.New()

	// The engine creates the container, but the answer is lost.
	faulty := drivertest.NewFaulty(mem)
	faulty.Inject(contract.OpCreateContainer, drivertest.Fault{
		Nth: 1, Count: 1, After: true,
		Err: contract.NewError(contract.CodeTimeout, contract.OpCreateContainer, "", "", nil),
	})

	d := retry.New(
		retry.WithInitialInterval(time.Millisecond),
		retry.WithOnRetry(func(ctx context.Context, info retry.Info) {
			fmt.Printf("attempt %d of %s after %s\n", info.Attempt, info.Op, contract.CodeOf(info.Err))
		}),
	)(faulty)

	_, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	list, _ := mem.ListContainers(ctx, contract.ContainerFilter{})
	fmt.Println("error:", err)
	fmt.Println("containers:", len(list))
	// Output:
	// attempt 2 of CreateContainer after TIMEOUT
	// error: <nil>
	// containers: 1
}

func ExampleError() {
	faulty := drivertest.NewFaulty(memdriver.New())
	faulty.Inject(contract.OpListContainers, drivertest.Fault{
		Err: contract.NewError(contract.CodeNetwork, contract.OpListContainers, "", "engine unreachable", nil),
	})
	d := retry.New(retry.WithMaxAttempts(3), retry.WithInitialInterval(time.Millisecond))(faulty)

	_, err := d.ListContainers(context.Background(), contract.ContainerFilter{})
	var re *retry.Error
	if errors.As(err, &re) {
		fmt.Println("attempts:", re.Attempts)
	}
	fmt.Println("attempts exhausted:", errors.Is(err, retry.ErrMaxAttempts))
	fmt.Println("last cause NETWORK:", errors.Is(err, contract.ErrNetwork))
	fmt.Println("retryable:", contract.IsRetryable(err))
	fmt.Println(err)
	// Output:
	// attempts: 3
	// attempts exhausted: true
	// last cause NETWORK: true
	// retryable: true
	// gave up after 3 attempts (attempts exhausted): ListContainers: engine unreachable
}

func ExampleForOp() {
	mw := retry.New(
		retry.WithMaxAttempts(3),
		// Creates are worth more patience; log reads are cheap to redo by hand.
		retry.ForOp(contract.OpCreateContainer, retry.WithMaxAttempts(5), retry.WithMaxInterval(5*time.Second)),
		retry.ForOp(contract.OpGetContainerLogs, retry.WithMaxAttempts(1)),
	)
	d := mw(memdriver.New())
	fmt.Println(d.Name())
	// Output: memory
}

func ExampleWithBudget() {
	// One budget for every middleware in front of the same engine: together
	// they add at most 10% retries, 5 a second, in bursts of at most 20.
	budget := retry.NewBudget(0.1, 5, 20)
	base := memdriver.New()
	interactive := retry.New(retry.WithBudget(budget), retry.WithMaxAttempts(2))
	batch := retry.New(retry.WithBudget(budget), retry.WithMaxAttempts(5))

	d := middleware.Chain(interactive)(base)
	b := middleware.Chain(batch)(base)
	fmt.Println(d.Name(), b.Name(), budget.Available())
	// Output: memory memory 20
}
