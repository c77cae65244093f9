package timeout

import (
	"math"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// TestBoundSaturates: an exec timeout or a stop grace period so long that
// the sum with the operation's timeout overflows gives the longest bound,
// never a negative one, which would mean no bound at all.
func TestBoundSaturates(t *testing.T) {
	var l limits
	for i := range l {
		l[i] = 30 * time.Second
	}
	exec := contract.ExecOptions{Command: []string{"true"}, Timeout: math.MaxInt64 - time.Second}
	stop := contract.StopOptions{Timeout: math.MaxInt64 - time.Second}
	for _, call := range []*middleware.Call{
		{Op: contract.OpExecContainer, Exec: &exec},
		{Op: contract.OpStopContainer, Stop: &stop},
	} {
		if d := l.of(call); d != math.MaxInt64 {
			t.Errorf("%s: bound %v, want the largest Duration", call.Op, d)
		}
	}
}
