package drivertest

import (
	"slices"
	"time"
)

// Defaults of [Run]'s options.
const (
	// DefaultImage is the image the suite's containers run by default.
	DefaultImage = "resilient-workload:latest"
	// DefaultTimeout bounds each subtest by default; see [WithTimeout].
	DefaultTimeout = 2 * time.Minute
	// DefaultExecProgram is the program the exec subtests run by default;
	// see [WithExecProgram].
	DefaultExecProgram = "/workload"
)

// An Option configures [Run]. Options are applied in order; the last one of
// a kind wins.
type Option interface {
	apply(*config)
}

type config struct {
	image       string
	command     []string
	timeout     time.Duration
	execProgram string
}

func newConfig(opts []Option) config {
	c := config{image: DefaultImage, timeout: DefaultTimeout, execProgram: DefaultExecProgram}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithImage sets the image the suite's containers run. It must exist for the
// driver under test (the suite does not pull it), and its command, or the
// one given with [WithCommand], must print at least one line and then run
// until it is stopped; the suite stops containers with a 2 second timeout,
// so it should exit promptly on SIGTERM. The default is [DefaultImage]. An
// empty ref is ignored.
func WithImage(ref string) Option {
	return optionFunc(func(c *config) {
		if ref != "" {
			c.image = ref
		}
	})
}

// WithCommand sets the command of the suite's containers, for images whose
// default command does not behave as [WithImage] requires. The default is
// nil: the image's own command. An empty command is ignored.
func WithCommand(cmd []string) Option {
	return optionFunc(func(c *config) {
		if len(cmd) > 0 {
			c.command = slices.Clone(cmd)
		}
	})
}

// WithTimeout bounds each subtest, its cleanup included. When a subtest
// runs longer, the suite reports it as failed and cancels the context of
// its driver calls; if the subtest still has not returned a minute later
// (a driver that ignores its context), the suite panics with every
// goroutine's stack, as the go test -timeout alarm does. The default is
// [DefaultTimeout]; d <= 0 is ignored.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	})
}

// WithExecProgram sets the program the ExecContainer subtests run in the
// suite's containers. It must behave as the workload program of
// [DefaultImage] does for the subcommands "print N" (N numbered lines,
// "workload: stdout line 1" to stdout, "workload: stderr line 2" to
// stderr, and so on), "exit CODE" and "cat" (stdin to stdout);
// [WorkloadExec] is that behaviour for drivers that run no processes. The
// default is [DefaultExecProgram]; an empty path is ignored.
func WithExecProgram(path string) Option {
	return optionFunc(func(c *config) {
		if path != "" {
			c.execProgram = path
		}
	})
}
