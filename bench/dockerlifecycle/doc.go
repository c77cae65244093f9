// Package dockerlifecycle measures what the Docker driver of
// github.com/resilientdriver/resilient costs over the bare Docker client:
// one container lifecycle (create, start, stop, remove) through
// dockerdriver, through the same calls on github.com/docker/docker/client,
// and through the docker CLI, in one run.
//
// It needs a Docker daemon and the image resilient-workload:latest; run
// scripts/provision.sh first. Without them the benchmarks fail (they never
// skip):
//
//	go test -run '^$' -bench 'Lifecycle$' -count 10 ./dockerlifecycle | tee new.txt
//	go tool benchstat new.txt
//	go test -run '^$' -bench LifecyclePaired -benchtime 50x ./dockerlifecycle
//
// BenchmarkLifecycle has a sub-benchmark per variant (driver, client,
// cli). BenchmarkLifecyclePaired alternates a driver and a bare-client
// lifecycle in every iteration and reports driver/client, the ratio of
// their times: a lifecycle takes about a second and the daemon's own
// latency varies by tens of percent under load, so pairing is what makes a
// 5% difference visible.
//
// The driver does more than the bare calls on purpose: it validates the
// config, inspects the new container to check that every limit was applied
// (failing closed otherwise) and maps errors. The bare client and the CLI
// get the same limits and security settings, so the daemon does the same
// work in all three.
package dockerlifecycle
