package drivertest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/resilientdriver/resilient/contract"
)

// concurrency is how many goroutines the concurrency tests run: enough to
// find races in a driver, few enough for a real engine on a small machine.
const concurrency = 8

var concurrencyTests = []test{
	{"Lifecycle", testConcurrentLifecycle},
	{"IdempotentCreate", testConcurrentIdempotentCreate},
}

// parallel runs f(0) ... f(n-1) in goroutines and waits for them.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

func testConcurrentLifecycle(h *harness) {
	s := h.session()
	made := make([]string, concurrency)
	parallel(concurrency, func(i int) {
		cfg := h.config(s)
		cfg.Labels["index"] = strconv.Itoa(i)
		inst, err := h.d.CreateContainer(h.ctx, cfg)
		if err != nil {
			h.Errorf("concurrent CreateContainer %d = %v", i, err)
			return
		}
		h.track(inst.ID)
		made[i] = inst.ID
	})
	if h.Failed() {
		return
	}
	want := slices.Sorted(slices.Values(made))
	if got := ids(h.list(contract.ContainerFilter{SessionID: s})); !slices.Equal(got, want) {
		h.Fatalf("after %d concurrent creates, session lists %d containers %v, want %v", concurrency, len(got), got, want)
	}

	parallel(concurrency, func(i int) {
		if err := h.d.StartContainer(h.ctx, made[i]); err != nil {
			h.Errorf("concurrent StartContainer %d = %v", i, err)
		}
	})
	running := h.list(contract.ContainerFilter{SessionID: s, Status: contract.StatusRunning})
	if len(running) != concurrency {
		h.Errorf("after %d concurrent starts, %d containers run, want %d: %s", concurrency, len(running), concurrency, describe(running))
	}
	for _, c := range running {
		if c.Labels["index"] == "" || made[mustAtoi(c.Labels["index"])] != c.ID {
			h.Errorf("container %s has label index=%q, which is not the index of the create that made it", short(c.ID), c.Labels["index"])
		}
	}

	parallel(concurrency, func(i int) {
		if err := h.d.RemoveContainer(h.ctx, made[i]); err != nil {
			h.Errorf("concurrent RemoveContainer %d = %v", i, err)
		}
	})
	h.wantEmpty(s, fmt.Sprintf("%d concurrent removes", concurrency))
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= concurrency {
		return 0
	}
	return n
}

// testConcurrentIdempotentCreate sends one create with one idempotency key
// several times at once, as a retry racing a slow first attempt would: at
// most one container may result, and every call that succeeds returns it.
func testConcurrentIdempotentCreate(h *harness) {
	const n = concurrency / 2
	cfg := h.config(h.session())
	ctx := contract.WithIdempotencyKey(h.ctx, "drivertest-"+randomHex(16))
	got := make([]string, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		inst, err := h.d.CreateContainer(ctx, cfg)
		if err == nil {
			h.track(inst.ID)
			got[i] = inst.ID
		}
		errs[i] = err
	})
	list := h.list(contract.ContainerFilter{SessionID: cfg.SessionID})
	if len(list) > 1 {
		h.Errorf("%d concurrent creates with one idempotency key made %d containers, want 1: %s", n, len(list), describe(list))
	}
	succeeded := 0
	for i, id := range got {
		if errs[i] != nil {
			h.Logf("concurrent CreateContainer %d with the shared key = %v", i, errs[i])
			continue
		}
		succeeded++
		if len(list) == 1 && id != list[0].ID {
			h.Errorf("concurrent CreateContainer %d with the shared key returned %s, but the container is %s", i, short(id), short(list[0].ID))
		}
	}
	if succeeded == 0 {
		h.Errorf("none of %d concurrent creates with one idempotency key succeeded", n)
	}
}
