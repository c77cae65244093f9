package ratelimit_test

import (
	"context"
	"sync"

	"github.com/resilientdriver/resilient/contract"
)

// stub is a counted driver: every method counts its call and returns what
// fn says for it (nil when fn is nil). fn runs without the stub's lock, so
// it may block.
type stub struct {
	mu    sync.Mutex
	calls map[contract.Op]int
	fn    func(ctx context.Context, op contract.Op) error
}

func newStub(fn func(ctx context.Context, op contract.Op) error) *stub {
	return &stub{calls: make(map[contract.Op]int), fn: fn}
}

// failing returns a stub whose op fails with err and whose other
// operations succeed.
func failing(op contract.Op, err error) *stub {
	return newStub(func(_ context.Context, o contract.Op) error {
		if o == op {
			return err
		}
		return nil
	})
}

func (s *stub) count(op contract.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *stub) setFn(fn func(ctx context.Context, op contract.Op) error) {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
}

func (s *stub) do(ctx context.Context, op contract.Op) error {
	s.mu.Lock()
	s.calls[op]++
	fn := s.fn
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, op)
}

var _ contract.ContainerDriver = (*stub)(nil)

func (s *stub) Name() string    { return "stub" }
func (s *stub) Version() string { return "0.0.0" }

func (s *stub) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpCreateContainer); err != nil {
		return contract.ContainerInstance{}, err
	}
	return contract.ContainerInstance{ID: "c1", Image: cfg.Image, SessionID: cfg.SessionID}, nil
}

func (s *stub) StartContainer(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpStartContainer)
}

func (s *stub) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	return s.do(ctx, contract.OpStopContainer)
}

func (s *stub) RemoveContainer(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveContainer)
}

func (s *stub) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpGetContainer); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *stub) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return nil, s.do(ctx, contract.OpListContainers)
}

func (s *stub) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	return "", s.do(ctx, contract.OpGetContainerLogs)
}

func (s *stub) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	if err := s.do(ctx, contract.OpHealthCheck); err != nil {
		return contract.DriverHealth{}, err
	}
	return contract.DriverHealth{Status: contract.Healthy, Version: "0.0.0"}, nil
}

func (s *stub) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	return true, s.do(ctx, contract.OpIsContainerHealthy)
}

func (s *stub) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	return contract.Volume{ID: cfg.Name, Name: cfg.Name}, s.do(ctx, contract.OpCreateVolume)
}

func (s *stub) RemoveVolume(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveVolume)
}

func (s *stub) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	return contract.Network{ID: cfg.Name, Name: cfg.Name}, s.do(ctx, contract.OpCreateNetwork)
}

func (s *stub) RemoveNetwork(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveNetwork)
}
