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
// with the ID asked for, HealthCheck a healthy report. It is the base for
// policy tests that need exact control of every call and no state. Safe
// for concurrent use; the function runs outside the stub's lock, so it may
// block.
type Stub struct {
	mu    sync.Mutex
	calls map[contract.Op]int
	fn    func(ctx context.Context, op contract.Op) error
}

var _ contract.ContainerDriver = (*Stub)(nil)

// NewStub returns a Stub whose calls return fn's error.
func NewStub(fn func(ctx context.Context, op contract.Op) error) *Stub {
	return &Stub{calls: make(map[contract.Op]int), fn: fn}
}

// Calls returns how many calls of op the stub received.
func (s *Stub) Calls(op contract.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// SetFunc replaces the function that decides every later call's error.
func (s *Stub) SetFunc(fn func(ctx context.Context, op contract.Op) error) {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
}

func (s *Stub) do(ctx context.Context, op contract.Op) error {
	s.mu.Lock()
	s.calls[op]++
	fn := s.fn
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, op)
}

// Name returns "stub".
func (s *Stub) Name() string { return "stub" }

// Version returns "0.0.0".
func (s *Stub) Version() string { return "0.0.0" }

// CreateContainer counts the call; on success it returns container "c1".
func (s *Stub) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpCreateContainer); err != nil {
		return contract.ContainerInstance{}, err
	}
	return contract.ContainerInstance{ID: "c1", Image: cfg.Image, SessionID: cfg.SessionID}, nil
}

// StartContainer counts the call.
func (s *Stub) StartContainer(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpStartContainer)
}

// StopContainer counts the call.
func (s *Stub) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	return s.do(ctx, contract.OpStopContainer)
}

// RemoveContainer counts the call.
func (s *Stub) RemoveContainer(ctx context.Context, id string) error {
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
func (s *Stub) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpListContainers); err != nil {
		return nil, err
	}
	return []contract.ContainerInstance{}, nil
}

// GetContainerLogs counts the call and returns no output.
func (s *Stub) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	return "", s.do(ctx, contract.OpGetContainerLogs)
}

// HealthCheck counts the call; on success it reports healthy.
func (s *Stub) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	if err := s.do(ctx, contract.OpHealthCheck); err != nil {
		return contract.DriverHealth{}, err
	}
	return contract.DriverHealth{Status: contract.Healthy, Version: "0.0.0"}, nil
}

// IsContainerHealthy counts the call; on success it reports true.
func (s *Stub) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	err := s.do(ctx, contract.OpIsContainerHealthy)
	return err == nil, err
}

// CreateVolume counts the call; on success the volume's ID is its name.
func (s *Stub) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	if err := s.do(ctx, contract.OpCreateVolume); err != nil {
		return contract.Volume{}, err
	}
	return contract.Volume{ID: cfg.Name, Name: cfg.Name}, nil
}

// RemoveVolume counts the call.
func (s *Stub) RemoveVolume(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveVolume)
}

// CreateNetwork counts the call; on success the network's ID is its name.
func (s *Stub) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	if err := s.do(ctx, contract.OpCreateNetwork); err != nil {
		return contract.Network{}, err
	}
	return contract.Network{ID: cfg.Name, Name: cfg.Name}, nil
}

// RemoveNetwork counts the call.
func (s *Stub) RemoveNetwork(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveNetwork)
}
