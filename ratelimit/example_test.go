package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/ratelimit"
)

func Example() {
	// One call per second, bursts of two, and never wait.
	d := ratelimit.New(1, 2, ratelimit.WithoutWaiting())(newStub(nil))

	ctx := context.Background()
	for range 3 {
		err := d.StartContainer(ctx, "web-1")
		fmt.Println(err)
		if errors.Is(err, contract.ErrRateLimited) {
			fmt.Println("retry after", contract.RetryAfter(err).Round(time.Second))
		}
	}
	// Output:
	// <nil>
	// <nil>
	// StartContainer web-1: rate limited: no token within the wait bound
	// retry after 1s
}

func ExampleWithOpLimit() {
	// No overall limit, but at most one create per minute.
	d := ratelimit.New(rate.Inf, 0,
		ratelimit.WithOpLimit(contract.OpCreateContainer, rate.Every(time.Minute), 1),
		ratelimit.WithMaxWait(time.Second),
	)(newStub(nil))

	ctx := context.Background()
	for range 2 {
		_, err := d.CreateContainer(ctx, contract.ContainerConfig{Image: "alpine:3"})
		fmt.Println("create:", err)
	}
	fmt.Println("start:", d.StartContainer(ctx, "c1"))
	// Output:
	// create: <nil>
	// create: CreateContainer: rate limited: no token within the wait bound
	// start: <nil>
}

func ExampleWithMaxConcurrent() {
	started, release := make(chan struct{}), make(chan struct{})
	base := newStub(func(_ context.Context, op contract.Op) error {
		if op == contract.OpStopContainer {
			close(started)
			<-release // a slow stop holds the only slot
		}
		return nil
	})
	d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithoutWaiting())(base)

	ctx := context.Background()
	done := make(chan error)
	go func() { done <- d.StopContainer(ctx, "web-1", contract.StopOptions{}) }()
	<-started
	fmt.Println(d.StartContainer(ctx, "web-2"))
	_, err := d.HealthCheck(ctx) // never limited
	fmt.Println("health:", err)
	close(release)
	fmt.Println("stop:", <-done)
	// Output:
	// StartContainer web-2: rate limited: too many calls in flight
	// health: <nil>
	// stop: <nil>
}
