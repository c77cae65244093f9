package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
)

func Example() {
	ctx := context.Background()
	d := resilient.Wrap(memdriver.New())

	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		fmt.Println(err)
		return
	}
	got, _ := d.GetContainer(ctx, inst.ID)
	fmt.Println("status:", got.Status)

	// The security policy refuses a config that mounts the Docker socket,
	// before any retry, breaker or rate limit sees it.
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Volumes = []contract.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	_, err = d.CreateContainer(ctx, cfg)
	fmt.Println("refused:", errors.Is(err, contract.ErrConfiguration))

	h, _ := d.HealthCheck(ctx)
	fmt.Println("health:", h.Status)
	// Output:
	// status: running
	// refused: true
	// health: healthy
}

func ExampleWrap_options() {
	d := resilient.Wrap(memdriver.New(),
		resilient.WithRetry(retry.WithMaxAttempts(5), retry.WithMaxElapsedTime(30*time.Second)),
		resilient.WithBreaker(breaker.WithConsecutiveFailures(3), breaker.WithOpenTimeout(10*time.Second)),
		resilient.WithRateLimit(ratelimit.WithRate(rate.Limit(20), 5), ratelimit.WithMaxConcurrent(4)),
		resilient.WithValidation(middleware.AllowBindMounts("/srv/data")),
		resilient.WithoutTracing(),
	)
	fmt.Println(d.Name())
	// Output: memory
}
