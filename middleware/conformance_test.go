package middleware_test

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
)

func TestConformanceIntercept(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return middleware.Intercept(identity)(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}

func TestConformanceValidate(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return middleware.Validate()(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}
