package drivertest

import (
	"context"
	"sync"

	"github.com/resilientdriver/resilient/contract"
)

// Stub is a driver that does nothing but count its calls: every method
// counts its operation and returns the error its function gives, nil when
// the function is nil. Creates return a resource with a fixed ID ("c1" for
// containers, the name for volumes and networks), GetContainer a container
// with the ID asked for, ListContainers an empty list, GetContainerLogs no
// output, HealthCheck a healthy report, IsContainerHealthy true; a call
// that fails returns the zero results. Name is "stub", Version "0.0.0". It
// is the base for policy tests that need exact control of every call and
// no state. Safe for concurrent use; the function runs outside the stub's
// lock, so it may block.
//
// Stub implements contract.ContainerDriver, not contract.LogStreamer. It
// allocates nothing per call but GetContainer's result, under the race
// detector too, so that policies' zero-allocation tests measure the policy
// alone; the package doc says why that keeps it off middleware.Intercept.
type Stub struct {
	mu    sync.Mutex
	calls opCounts
	fn    func(ctx context.Context, op contract.Op) error
}

var _ contract.ContainerDriver = (*Stub)(nil)

// NewStub returns a Stub whose calls return fn's error.
func NewStub(fn func(ctx context.Context, op contract.Op) error) *Stub {
	return &Stub{fn: fn}
}

// Calls returns how many calls of op the stub received.
func (s *Stub) Calls(op contract.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls.of(op)
}

// SetFunc replaces the function that decides every later call's error.
func (s *Stub) SetFunc(fn func(ctx context.Context, op contract.Op) error) {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
}

// do is every call: it counts op and returns the function's error.
func (s *Stub) do(ctx context.Context, op contract.Op) error {
	s.mu.Lock()
	s.calls.add(op)
	fn := s.fn
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, op)
}

// result is do for a method with a result: v on success, else T's zero
// value.
func result[T any](s *Stub, ctx context.Context, op contract.Op, v T) (T, error) {
	if err := s.do(ctx, op); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Name returns "stub".
func (s *Stub) Name() string { return "stub" }

// Version returns "0.0.0".
func (s *Stub) Version() string { return "0.0.0" }

// CreateContainer counts the call; on success it returns container "c1".
func (s *Stub) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	inst := contract.ContainerInstance{ID: "c1", Image: cfg.Image, SessionID: cfg.SessionID}
	return result(s, ctx, contract.OpCreateContainer, inst)
}

// StartContainer counts the call.
func (s *Stub) StartContainer(ctx context.Context, _ string) error {
	return s.do(ctx, contract.OpStartContainer)
}

// StopContainer counts the call.
func (s *Stub) StopContainer(ctx context.Context, _ string, _ contract.StopOptions) error {
	return s.do(ctx, contract.OpStopContainer)
}

// RemoveContainer counts the call.
func (s *Stub) RemoveContainer(ctx context.Context, _ string) error {
	return s.do(ctx, contract.OpRemoveContainer)
}

// GetContainer counts the call; on success it returns a container with ID id.
func (s *Stub) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpGetContainer); err != nil {
		return nil, err
	}
	return &contract.ContainerInstance{ID: id}, nil
}

// ListContainers counts the call and returns no containers.
func (s *Stub) ListContainers(ctx context.Context, _ contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return result(s, ctx, contract.OpListContainers, []contract.ContainerInstance{})
}

// GetContainerLogs counts the call and returns no output.
func (s *Stub) GetContainerLogs(ctx context.Context, _ string, _ contract.LogOptions) (string, error) {
	return "", s.do(ctx, contract.OpGetContainerLogs)
}

// HealthCheck counts the call; on success it reports healthy.
func (s *Stub) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	return result(s, ctx, contract.OpHealthCheck, contract.DriverHealth{Status: contract.Healthy, Version: "0.0.0"})
}

// IsContainerHealthy counts the call; on success it reports true.
func (s *Stub) IsContainerHealthy(ctx context.Context, _ string) (bool, error) {
	return result(s, ctx, contract.OpIsContainerHealthy, true)
}

// CreateVolume counts the call; on success the volume's ID is its name.
func (s *Stub) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	return result(s, ctx, contract.OpCreateVolume, contract.Volume{ID: cfg.Name, Name: cfg.Name})
}

// RemoveVolume counts the call.
func (s *Stub) RemoveVolume(ctx context.Context, _ string) error {
	return s.do(ctx, contract.OpRemoveVolume)
}

// CreateNetwork counts the call; on success the network's ID is its name.
func (s *Stub) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	return result(s, ctx, contract.OpCreateNetwork, contract.Network{ID: cfg.Name, Name: cfg.Name})
}

// RemoveNetwork counts the call.
func (s *Stub) RemoveNetwork(ctx context.Context, _ string) error {
	return s.do(ctx, contract.OpRemoveNetwork)
}
