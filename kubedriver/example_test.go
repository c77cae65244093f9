package kubedriver_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// A container's whole life on a cluster, behind the recommended layers.
// It needs a cluster, so it is compiled but not run by go test.
func Example() {
	ctx := context.Background()
	kd, err := kubedriver.New(kubedriver.WithNamespace("sandboxes")) // KUBECONFIG, else ~/.kube/config, else in-cluster
	if err != nil {
		log.Fatal(err)
	}
	defer kd.Close()
	d := resilient.Wrap(kd)

	cfg := contract.NewContainerConfig("session-42", "resilient-workload:latest")
	c, err := d.CreateContainer(ctx, cfg) // a pod held by a scheduling gate: "created"
	if err != nil {
		log.Fatal(err)
	}
	defer d.RemoveContainer(ctx, c.ID)
	if err := d.StartContainer(ctx, c.ID); err != nil { // the gate removed; returns once it runs
		log.Fatal(err)
	}
	if err := d.StopContainer(ctx, c.ID, contract.StopOptions{Timeout: 5 * time.Second}); err != nil {
		log.Fatal(err)
	}
	out, err := d.GetContainerLogs(ctx, c.ID, contract.LogOptions{Tail: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
}

// Options for a kubeconfig of its own, a namespace, and nodes shared by
// many small sandboxes.
func ExampleNew() {
	d, err := kubedriver.New(
		kubedriver.WithKubeconfig("/etc/sandboxes/kubeconfig"),
		kubedriver.WithNamespace("sandboxes"),
		kubedriver.WithCPURequestFraction(0.1), // request a tenth of each CPU limit
		kubedriver.WithPullPolicy(kubedriver.PullNever),
		kubedriver.WithStartTimeout(time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	h, _ := d.HealthCheck(context.Background())
	fmt.Println(h.Status, h.Containers.Total)
}

// Remove what sessions that ended left behind, and anything older than a day.
func ExampleDriver_Reap() {
	d, err := kubedriver.New()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	rep, err := d.Reap(context.Background(), kubedriver.ReapOptions{
		LiveSessions: []string{"session-42", "session-43"},
		MaxAge:       24 * time.Hour,
	})
	if err != nil {
		log.Print(err)
	}
	fmt.Println(len(rep.Containers), "containers removed")
}
