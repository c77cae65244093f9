package retry_test

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/retry"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return retry.New()(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}
