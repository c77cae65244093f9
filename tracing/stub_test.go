package tracing_test

import (
	"context"
	"io"
	"strings"

	"github.com/resilientdriver/resilient/contract"
)

// stub is a driver that does nothing. Each method calls hook, when set, with
// the call's context and operation and returns its error; creates return
// fixed IDs.
type stub struct {
	hook func(ctx context.Context, op contract.Op) error
}

var _ contract.ContainerDriver = (*stub)(nil)

func (s *stub) do(ctx context.Context, op contract.Op) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(ctx, op)
}

func (s *stub) Name() string    { return "stub" }
func (s *stub) Version() string { return "1.2.3" }

func (s *stub) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	if err := s.do(ctx, contract.OpCreateContainer); err != nil {
		return contract.ContainerInstance{}, err
	}
	return contract.ContainerInstance{ID: "c-1", SessionID: cfg.SessionID, Image: cfg.Image}, nil
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
	return &contract.ContainerInstance{ID: id}, nil
}

func (s *stub) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return nil, s.do(ctx, contract.OpListContainers)
}

func (s *stub) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	return "", s.do(ctx, contract.OpGetContainerLogs)
}

func (s *stub) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	return contract.DriverHealth{Status: contract.Healthy}, s.do(ctx, contract.OpHealthCheck)
}

func (s *stub) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	return true, s.do(ctx, contract.OpIsContainerHealthy)
}

func (s *stub) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	if err := s.do(ctx, contract.OpCreateVolume); err != nil {
		return contract.Volume{}, err
	}
	return contract.Volume{ID: "v-1", Name: cfg.Name}, nil
}

func (s *stub) RemoveVolume(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveVolume)
}

func (s *stub) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	if err := s.do(ctx, contract.OpCreateNetwork); err != nil {
		return contract.Network{}, err
	}
	return contract.Network{ID: "n-1", Name: cfg.Name}, nil
}

func (s *stub) RemoveNetwork(ctx context.Context, id string) error {
	return s.do(ctx, contract.OpRemoveNetwork)
}

// streamingStub also follows logs.
type streamingStub struct{ stub }

var _ contract.LogStreamer = (*streamingStub)(nil)

func (s *streamingStub) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	if err := s.do(ctx, contract.OpStreamContainerLogs); err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader("hello\n")), nil
}
