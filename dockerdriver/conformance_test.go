package dockerdriver_test

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return newDriver(t)
	}, drivertest.WithImage(workloadImage))
}
