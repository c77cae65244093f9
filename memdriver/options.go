package memdriver

import "time"

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
}

func newConfig(opts []Option) config {
	c := config{clock: time.Now, maxLogLines: DefaultMaxLogLines}
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
