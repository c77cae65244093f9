package memdriver

import (
	"context"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// DefaultMaxLogLines is how many log lines a container keeps by default; see
// [WithMaxLogLines].
const DefaultMaxLogLines = 10000

// An Option configures a [Driver]. Options are applied in order; the last
// one of a kind wins.
type Option interface {
	apply(*config)
}

type config struct {
	clock       func() time.Time
	maxLogLines int
	exec        ExecHandler
	copyLimit   int64
}

func newConfig(opts []Option) config {
	c := config{clock: time.Now, maxLogLines: DefaultMaxLogLines, copyLimit: contract.DefaultCopyLimit}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithClock sets the clock the driver reads for CreatedAt, StartedAt, log
// timestamps and the uptime reported by HealthCheck. The default is
// [time.Now]; a nil clock is ignored. Tests pass a fake clock to get
// deterministic times.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.clock = now
		}
	})
}

// WithMaxLogLines caps the log lines each container keeps; older lines are
// dropped first, as a log rotation would. The default is
// [DefaultMaxLogLines]; n <= 0 is ignored.
func WithMaxLogLines(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxLogLines = n
		}
	})
}

// ExecHandler runs the command of an ExecContainer call in place of a
// process: the driver runs none. It receives the call's context (bounded by
// ExecOptions.Timeout when set), the container's ID and the options, after
// the driver checked them and that the container runs, and returns the
// result as a process would. Its errors are returned as they are. It is
// called without the driver's lock held, so it may call the driver (to read
// or write the container's files, say) and run concurrently.
type ExecHandler func(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error)

// WithExecHandler sets the handler that runs the commands of
// ExecContainer. The default is none: ExecContainer fails with a
// CONFIGURATION error that says so. A nil handler restores the default.
// drivertest.WorkloadExec emulates the workload image's commands.
func WithExecHandler(h ExecHandler) Option {
	return optionFunc(func(c *config) { c.exec = h })
}

// WithCopyLimit caps the bytes of one tar stream copied into or out of a
// container. The default is contract.DefaultCopyLimit (256 MiB); n <= 0
// restores it.
func WithCopyLimit(n int64) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			n = contract.DefaultCopyLimit
		}
		c.copyLimit = n
	})
}
