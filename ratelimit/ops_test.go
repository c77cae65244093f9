package ratelimit

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

func TestOpIndexCoversEveryOp(t *testing.T) {
	seen := make(map[int]contract.Op)
	for _, op := range append(contract.Ops(), contract.OpStreamContainerLogs) {
		i := opIndex(op)
		if i < 0 || i >= numOps {
			t.Errorf("opIndex(%s) = %d, want in [0, %d)", op, i, numOps)
			continue
		}
		if prev, ok := seen[i]; ok {
			t.Errorf("opIndex(%s) = opIndex(%s) = %d", op, prev, i)
		}
		seen[i] = op
	}
	if opIndex("NoSuchOp") != -1 {
		t.Error("unknown op has an index")
	}
}
