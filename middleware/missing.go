package middleware

import (
	"context"

	"github.com/resilientdriver/resilient/contract"
)

// missing stands in for a nil driver given to a middleware: every call
// fails with CONFIGURATION instead of panicking deep inside a layer.
type missing struct{}

var _ contract.ContainerDriver = missing{}

func noDriver(op contract.Op, id string) error {
	return contract.NewError(contract.CodeConfiguration, op, id, "no driver: the middleware was given a nil driver", nil)
}

func (missing) Name() string    { return "" }
func (missing) Version() string { return "" }

func (missing) CreateContainer(context.Context, contract.ContainerConfig) (contract.ContainerInstance, error) {
	return contract.ContainerInstance{}, noDriver(contract.OpCreateContainer, "")
}

func (missing) StartContainer(_ context.Context, id string) error {
	return noDriver(contract.OpStartContainer, id)
}

func (missing) StopContainer(_ context.Context, id string, _ contract.StopOptions) error {
	return noDriver(contract.OpStopContainer, id)
}

func (missing) RemoveContainer(_ context.Context, id string) error {
	return noDriver(contract.OpRemoveContainer, id)
}

func (missing) GetContainer(_ context.Context, id string) (*contract.ContainerInstance, error) {
	return nil, noDriver(contract.OpGetContainer, id)
}

func (missing) ListContainers(context.Context, contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return nil, noDriver(contract.OpListContainers, "")
}

func (missing) GetContainerLogs(_ context.Context, id string, _ contract.LogOptions) (string, error) {
	return "", noDriver(contract.OpGetContainerLogs, id)
}

func (missing) HealthCheck(context.Context) (contract.DriverHealth, error) {
	return contract.DriverHealth{}, noDriver(contract.OpHealthCheck, "")
}

func (missing) IsContainerHealthy(_ context.Context, id string) (bool, error) {
	return false, noDriver(contract.OpIsContainerHealthy, id)
}

func (missing) CreateVolume(context.Context, contract.VolumeConfig) (contract.Volume, error) {
	return contract.Volume{}, noDriver(contract.OpCreateVolume, "")
}

func (missing) RemoveVolume(_ context.Context, id string) error {
	return noDriver(contract.OpRemoveVolume, id)
}

func (missing) CreateNetwork(context.Context, contract.NetworkConfig) (contract.Network, error) {
	return contract.Network{}, noDriver(contract.OpCreateNetwork, "")
}

func (missing) RemoveNetwork(_ context.Context, id string) error {
	return noDriver(contract.OpRemoveNetwork, id)
}
