package middleware_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
)

// TestInterceptKeepsExactlyTheOptionalInterfaces wraps a driver with each
// combination of the optional interfaces and checks that the adapter has
// those and no other.
func TestInterceptKeepsExactlyTheOptionalInterfaces(t *testing.T) {
	m := memdriver.New()
	identity := middleware.Intercept(func(ctx context.Context, _ *middleware.Call, next middleware.Invoker) error { return next(ctx) })
	for mask := range 16 {
		d := compose(m, mask)
		w := identity(d)
		got := maskOf(w)
		if got != mask || maskOf(d) != mask {
			t.Errorf("driver with interfaces %s: the adapter has %s", names(mask), names(got))
		}
	}
}

func maskOf(d contract.ContainerDriver) int {
	mask := 0
	if _, ok := d.(contract.LogStreamer); ok {
		mask |= 1
	}
	if _, ok := d.(contract.Executor); ok {
		mask |= 2
	}
	if _, ok := d.(contract.FileCopier); ok {
		mask |= 4
	}
	if _, ok := d.(contract.StatsReader); ok {
		mask |= 8
	}
	return mask
}

func names(mask int) string {
	var s []string
	for i, n := range []string{"LogStreamer", "Executor", "FileCopier", "StatsReader"} {
		if mask&(1<<i) != 0 {
			s = append(s, n)
		}
	}
	return fmt.Sprint(s)
}

// compose returns m as a driver with the optional interfaces of mask only.
func compose(m *memdriver.Driver, mask int) contract.ContainerDriver {
	type (
		base = contract.ContainerDriver
		s    = contract.LogStreamer
		e    = contract.Executor
		c    = contract.FileCopier
		t    = contract.StatsReader
	)
	switch mask {
	case 0:
		return struct{ base }{m}
	case 1:
		return struct {
			base
			s
		}{m, m}
	case 2:
		return struct {
			base
			e
		}{m, m}
	case 3:
		return struct {
			base
			s
			e
		}{m, m, m}
	case 4:
		return struct {
			base
			c
		}{m, m}
	case 5:
		return struct {
			base
			s
			c
		}{m, m, m}
	case 6:
		return struct {
			base
			e
			c
		}{m, m, m}
	case 7:
		return struct {
			base
			s
			e
			c
		}{m, m, m, m}
	case 8:
		return struct {
			base
			t
		}{m, m}
	case 9:
		return struct {
			base
			s
			t
		}{m, m, m}
	case 10:
		return struct {
			base
			e
			t
		}{m, m, m}
	case 11:
		return struct {
			base
			s
			e
			t
		}{m, m, m, m}
	case 12:
		return struct {
			base
			c
			t
		}{m, m, m}
	case 13:
		return struct {
			base
			s
			c
			t
		}{m, m, m, m}
	case 14:
		return struct {
			base
			e
			c
			t
		}{m, m, m, m}
	}
	return m
}
