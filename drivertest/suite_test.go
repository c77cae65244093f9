package drivertest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A Faulty without faults is the driver it wraps, so it passes the suite.
func TestRunFaultyWithoutFaults(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return drivertest.NewFaulty(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	}, drivertest.WithImage("registry.example:5000/team/app:1.0"), drivertest.WithCommand([]string{"serve"}))
}

// A driver without LogStreamer passes too: its streaming subtests are
// skipped.
func TestRunWithoutLogStreamer(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return struct{ contract.ContainerDriver }{memdriver.New()}
	})
}

// Broken drivers: memdriver with one deliberate defect each. The suite runs
// against them in a child process (see TestBrokenDriver) and must fail the
// named subtests.

type absentIsError struct{ *memdriver.Driver }

func (d absentIsError) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	c, err := d.Driver.GetContainer(ctx, id)
	if c == nil && err == nil {
		return nil, contract.NewError(contract.CodeContainerNotFound, contract.OpGetContainer, id, "", nil)
	}
	return c, err
}

type stopDoesNothing struct{ *memdriver.Driver }

func (stopDoesNothing) StopContainer(context.Context, string, contract.StopOptions) error { return nil }

type retryableNotFound struct{ *memdriver.Driver }

func (d retryableNotFound) StartContainer(ctx context.Context, id string) error {
	err := d.Driver.StartContainer(ctx, id)
	if err != nil {
		return &contract.DriverError{Code: contract.CodeContainerNotFound, Retryable: true, Err: err}
	}
	return nil
}

type ignoresKey struct{ *memdriver.Driver }

func (d ignoresKey) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	return d.Driver.CreateContainer(context.WithoutCancel(contract.WithIdempotencyKey(ctx, "")), cfg)
}

type removeLeaks struct{ *memdriver.Driver }

func (removeLeaks) RemoveContainer(context.Context, string) error { return nil }

type slowHealth struct{ *memdriver.Driver }

func (slowHealth) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	<-ctx.Done()
	return contract.DriverHealth{}, contract.NewError(contract.CodeTimeout, contract.OpHealthCheck, "", "", ctx.Err())
}

type aliasesLabels struct {
	*memdriver.Driver
	labels map[string]string
}

func (d *aliasesLabels) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	c, err := d.Driver.GetContainer(ctx, id)
	if c != nil {
		if d.labels == nil {
			d.labels = c.Labels
		}
		c.Labels = d.labels
	}
	return c, err
}

var brokenDrivers = map[string]struct {
	make func() contract.ContainerDriver
	opts []drivertest.Option
	// wantFail are subtests that must fail, wantText texts the output must
	// hold.
	wantFail []string
	wantText []string
}{
	"absent-is-error": {
		make:     func() contract.ContainerDriver { return absentIsError{memdriver.New()} },
		wantFail: []string{"GetContainer/Absent", "RemoveContainer/Created"},
	},
	"stop-does-nothing": {
		make:     func() contract.ContainerDriver { return stopDoesNothing{memdriver.New()} },
		opts:     []drivertest.Option{drivertest.WithTimeout(2 * time.Second)},
		wantFail: []string{"StopContainer/Running", "StopContainer/Force", "StreamContainerLogs/Follow"},
	},
	"retryable-not-found": {
		make:     func() contract.ContainerDriver { return retryableNotFound{memdriver.New()} },
		wantFail: []string{"StartContainer/NotFound"},
		wantText: []string{"IsRetryable = true, want false for CONTAINER_NOT_FOUND"},
	},
	"ignores-key-and-context": {
		make:     func() contract.ContainerDriver { return ignoresKey{memdriver.New()} },
		wantFail: []string{"CreateContainer/IdempotencyKey", "Concurrency/IdempotentCreate", "Canceled/CreateContainer"},
	},
	"remove-leaks": {
		make:     func() contract.ContainerDriver { return removeLeaks{memdriver.New()} },
		wantFail: []string{"RemoveContainer/Created", "Concurrency/Lifecycle", "CreateContainer/Instance"},
		wantText: []string{"still lists containers after they were removed"},
	},
	"hangs": {
		make:     func() contract.ContainerDriver { return slowHealth{memdriver.New()} },
		opts:     []drivertest.Option{drivertest.WithTimeout(time.Second)},
		wantFail: []string{"HealthCheck/Healthy", "HealthCheck/Counts"},
		wantText: []string{"did not finish within 1s (see WithTimeout); cancelling its context"},
	},
	"aliases-labels": {
		make:     func() contract.ContainerDriver { return &aliasesLabels{Driver: memdriver.New()} },
		wantFail: []string{"CreateContainer/LabelsCopied"},
	},
}

const brokenEnv = "DRIVERTEST_BROKEN_DRIVER"

// TestBrokenDriverChild runs the suite against the broken driver its
// environment names; it does nothing otherwise.
func TestBrokenDriverChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestBrokenDriver")
	}
	b := brokenDrivers[name]
	drivertest.Run(t, func(*testing.T) contract.ContainerDriver { return b.make() }, b.opts...)
}

// TestBrokenDriver checks that the suite finds each defect.
func TestBrokenDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	for name, b := range brokenDrivers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenDriverChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a driver whose defect is %s:\n%s", name, out)
			}
			for _, sub := range b.wantFail {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenDriverChild/"+sub+" ") {
					t.Errorf("subtest %s did not fail", sub)
				}
			}
			for _, text := range b.wantText {
				if !strings.Contains(string(out), text) {
					t.Errorf("output does not hold %q", text)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}
