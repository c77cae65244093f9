package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

func ExampleIntercept() {
	// An interceptor sees every call with its operation and resource ID,
	// and continues it with next.
	logCalls := middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		err := next(ctx)
		fmt.Printf("%s %q: err=%v\n", call.Op, call.ID, err)
		return err
	})
	d := logCalls(nop{})
	d.StartContainer(context.Background(), "c1")
	d.CreateVolume(context.Background(), contract.VolumeConfig{Name: "data"})
	// Output:
	// StartContainer "c1": err=<nil>
	// CreateVolume "v1": err=<nil>
}

func ExampleChain() {
	var log []string
	d := middleware.Chain(order("outer", &log), order("inner", &log))(nop{})
	d.RemoveContainer(context.Background(), "c1")
	fmt.Println(log)
	// Output: [outer inner /inner /outer]
}

func ExampleValidate() {
	d := middleware.Validate()(nop{})

	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Volumes = []contract.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	cfg.Security.Capabilities.Add = []string{"SYS_ADMIN"}

	_, err := d.CreateContainer(context.Background(), cfg)
	fmt.Println(errors.Is(err, contract.ErrConfiguration))
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		for _, is := range ve.Issues {
			fmt.Println(is.Path)
		}
	}
	// Output:
	// true
	// volumes.0.source
	// security.capabilities.add.0
}

func ExampleAllowBindMounts() {
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Volumes = []contract.VolumeMount{{Source: "/etc/ssl/certs", Target: "/etc/ssl/certs", ReadOnly: true}}

	fmt.Println(middleware.CheckContainerConfig(cfg) != nil)
	fmt.Println(middleware.CheckContainerConfig(cfg, middleware.AllowBindMounts("/etc/ssl/certs")))
	// Output:
	// true
	// <nil>
}

func ExampleWithPolicy() {
	requireTeam := middleware.WithPolicy(func(cfg contract.ContainerConfig) []contract.Issue {
		if cfg.Labels["team"] == "" {
			return []contract.Issue{{Path: "labels.team", Message: "must name the owning team"}}
		}
		return nil
	})
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	fmt.Println(middleware.CheckContainerConfig(cfg, requireTeam))
	// Output: CreateContainer: container config refused by the security policy: labels.team: must name the owning team
}
