package bench

import (
	"context"

	"github.com/resilientdriver/resilient/contract"
)

// noop is a driver that does nothing and never fails.
type noop struct{}

var _ contract.ContainerDriver = noop{}

func (noop) Name() string    { return "noop" }
func (noop) Version() string { return "0.0.0" }

func (noop) CreateContainer(context.Context, contract.ContainerConfig) (contract.ContainerInstance, error) {
	return contract.ContainerInstance{}, nil
}
func (noop) StartContainer(context.Context, string) error                      { return nil }
func (noop) StopContainer(context.Context, string, contract.StopOptions) error { return nil }
func (noop) RemoveContainer(context.Context, string) error                     { return nil }
func (noop) GetContainer(context.Context, string) (*contract.ContainerInstance, error) {
	return nil, nil
}
func (noop) ListContainers(context.Context, contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return nil, nil
}
func (noop) GetContainerLogs(context.Context, string, contract.LogOptions) (string, error) {
	return "", nil
}
func (noop) HealthCheck(context.Context) (contract.DriverHealth, error) {
	return contract.DriverHealth{Status: contract.Healthy}, nil
}
func (noop) IsContainerHealthy(context.Context, string) (bool, error) { return true, nil }
func (noop) CreateVolume(context.Context, contract.VolumeConfig) (contract.Volume, error) {
	return contract.Volume{}, nil
}
func (noop) RemoveVolume(context.Context, string) error { return nil }
func (noop) CreateNetwork(context.Context, contract.NetworkConfig) (contract.Network, error) {
	return contract.Network{}, nil
}
func (noop) RemoveNetwork(context.Context, string) error { return nil }
