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

// TestStubResults checks every method's documented results, on success and
// on failure, and that each call is counted under its own operation.
func TestStubResults(t *testing.T) {
	ctx := context.Background()
	s := drivertest.NewStub(nil)
	if s.Name() != "stub" || s.Version() != "0.0.0" {
		t.Errorf("Name, Version = %q, %q", s.Name(), s.Version())
	}
	if _, ok := contract.ContainerDriver(s).(contract.LogStreamer); ok {
		t.Error("Stub implements contract.LogStreamer")
	}
	cfg := contract.NewContainerConfig("s", "alpine")
	if inst, err := s.CreateContainer(ctx, cfg); err != nil || inst.ID != "c1" || inst.Image != cfg.Image || inst.SessionID != cfg.SessionID {
		t.Errorf("CreateContainer = %+v, %v", inst, err)
	}
	if inst, err := s.GetContainer(ctx, "x"); err != nil || inst == nil || inst.ID != "x" {
		t.Errorf("GetContainer = %+v, %v", inst, err)
	}
	if list, err := s.ListContainers(ctx, contract.ContainerFilter{}); err != nil || list == nil || len(list) != 0 {
		t.Errorf("ListContainers = %#v, %v, want an empty list", list, err)
	}
	if out, err := s.GetContainerLogs(ctx, "x", contract.LogOptions{}); err != nil || out != "" {
		t.Errorf("GetContainerLogs = %q, %v", out, err)
	}
	if h, err := s.HealthCheck(ctx); err != nil || h.Status != contract.Healthy || h.Version != "0.0.0" {
		t.Errorf("HealthCheck = %+v, %v", h, err)
	}
	if v, err := s.CreateVolume(ctx, contract.VolumeConfig{Name: "v"}); err != nil || v.ID != "v" || v.Name != "v" {
		t.Errorf("CreateVolume = %+v, %v", v, err)
	}
	if n, err := s.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"}); err != nil || n.ID != "n" || n.Name != "n" {
		t.Errorf("CreateNetwork = %+v, %v", n, err)
	}
	for _, err := range []error{
		s.StartContainer(ctx, "x"), s.StopContainer(ctx, "x", contract.StopOptions{}), s.RemoveContainer(ctx, "x"),
		s.RemoveVolume(ctx, "v"), s.RemoveNetwork(ctx, "n"),
	} {
		if err != nil {
			t.Errorf("call = %v, want nil", err)
		}
	}
	if ok, err := s.IsContainerHealthy(ctx, "x"); !ok || err != nil {
		t.Errorf("IsContainerHealthy = %v, %v", ok, err)
	}
	for _, op := range contract.Ops() {
		if got := s.Calls(op); got != 1 {
			t.Errorf("Calls(%s) = %d, want 1", op, got)
		}
	}

	boom := contract.NewError(contract.CodeNetwork, "", "", "", nil)
	s.SetFunc(func(context.Context, contract.Op) error { return boom })
	if inst, err := s.CreateContainer(ctx, cfg); err != boom || inst.ID != "" {
		t.Errorf("failing CreateContainer = %+v, %v", inst, err)
	}
	if inst, err := s.GetContainer(ctx, "x"); err != boom || inst != nil {
		t.Errorf("failing GetContainer = %+v, %v", inst, err)
	}
	if list, err := s.ListContainers(ctx, contract.ContainerFilter{}); err != boom || list != nil {
		t.Errorf("failing ListContainers = %#v, %v", list, err)
	}
	if h, err := s.HealthCheck(ctx); err != boom || h.Status != "" {
		t.Errorf("failing HealthCheck = %+v, %v", h, err)
	}
	if ok, err := s.IsContainerHealthy(ctx, "x"); err != boom || ok {
		t.Errorf("failing IsContainerHealthy = %v, %v", ok, err)
	}
	if got := s.Calls(contract.OpHealthCheck); got != 2 {
		t.Errorf("Calls(HealthCheck) = %d, want 2", got)
	}
}
