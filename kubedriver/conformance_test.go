package kubedriver_test

import (
	"testing"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

// restricted labels a namespace to enforce the "restricted" Pod Security
// Standard: every pod the suite makes must meet it.
var restricted = []string{"pod-security.kubernetes.io/enforce", "restricted"}

// The conformance suite on the cluster, bare and behind the recommended
// chain, each in a namespace of its own that must be empty afterwards and
// that admits only pods meeting the "restricted" Pod Security Standard.
// The two run in parallel: each runs its subtests one at a time, and the
// cluster has room for both.
func TestConformance(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return newDriver(t, ns)
	}, drivertest.WithImage(workloadImage))
}

// The driver behind the recommended chain (tracing, validation, retry,
// breaker, rate limit, timeout) keeps every promise of the contract.
func TestConformanceWrapped(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return resilient.Wrap(newDriver(t, ns))
	}, drivertest.WithImage(workloadImage))
}
