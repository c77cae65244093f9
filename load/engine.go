package main

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// engine is a Docker client of its own, apart from the drivers under
// test, that checks what they left on the daemon.
type engine struct {
	cli     *client.Client
	version string
}

func newEngine(ctx context.Context, image string) (*engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker daemon answers at %s (run scripts/provision.sh): %w", cli.DaemonHost(), err)
	}
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		cli.Close()
		return nil, fmt.Errorf("image %s is missing (run scripts/provision.sh): %w", image, err)
	}
	return &engine{cli: cli, version: "Docker " + v.Version}, nil
}

func (e *engine) close() { e.cli.Close() }

// leftovers lists the containers with the load drivers' managed label,
// only those of row when it is not empty, and removes them so that the
// next row starts clean. It returns one line per container.
func (e *engine) leftovers(ctx context.Context, row string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", labelPrefix+".managed=true"))
	if row != "" {
		f.Add("label", rowLabel+"="+row)
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("engine check: listing containers: %w", err)
	}
	var left []string
	for _, c := range list {
		left = append(left, fmt.Sprintf("%.12s %v (%s, session %s)", c.ID, c.Names, c.State, c.Labels[labelPrefix+".session"]))
		_ = e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	return left, nil
}
