package dockerdriver_test

import (
	"testing"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return newDriver(t)
	}, drivertest.WithImage(workloadImage))
}

// The driver behind the recommended chain (tracing, validation, retry,
// breaker, rate limit) keeps every promise of the contract.
func TestConformanceWrapped(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return resilient.Wrap(newDriver(t))
	}, drivertest.WithImage(workloadImage))
}
