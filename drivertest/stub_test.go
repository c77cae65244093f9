package drivertest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

func TestStub(t *testing.T) {
	ctx := context.Background()
	boom := contract.NewError(contract.CodeNetwork, "", "", "", nil)
	s := drivertest.NewStub(func(_ context.Context, op contract.Op) error {
		if op == contract.OpStartContainer {
			return boom
		}
		return nil
	})
	inst, err := s.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine"))
	if err != nil || inst.ID != "c1" {
		t.Fatalf("CreateContainer = %+v, %v", inst, err)
	}
	for range 3 {
		if err := s.StartContainer(ctx, "c1"); !errors.Is(err, contract.ErrNetwork) {
			t.Fatalf("StartContainer = %v, want the function's error", err)
		}
	}
	if got := s.Calls(contract.OpStartContainer); got != 3 {
		t.Errorf("Calls(StartContainer) = %d, want 3", got)
	}
	s.SetFunc(nil)
	if err := s.StartContainer(ctx, "c1"); err != nil {
		t.Errorf("after SetFunc(nil) StartContainer = %v", err)
	}
	if ok, err := s.IsContainerHealthy(ctx, "c1"); !ok || err != nil {
		t.Errorf("IsContainerHealthy = %v, %v", ok, err)
	}
	if got := s.Calls(contract.OpStopContainer); got != 0 {
		t.Errorf("Calls(StopContainer) = %d, want 0", got)
	}
}
