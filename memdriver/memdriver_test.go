package memdriver_test

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec))
	})
}
