package dockerdriver_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/timeout"
)

// TestOnePullPerImage: creates that all need a missing image wait for one
// pull; the pull's progress keeps each of them alive through a timeout
// layer whose timeout is shorter than the pull.
func TestOnePullPerImage(t *testing.T) {
	t.Parallel()
	e := newEchoEngine(t, nil)
	var pulled atomic.Bool
	var pulls atomic.Int32
	e.mu.Lock()
	create := e.handlers["POST /containers/create"]
	e.mu.Unlock()
	e.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		if !pulled.Load() {
			writeJSON(w, 404, map[string]string{"message": "No such image: " + workloadImage})
			return
		}
		create(w, r)
	})
	e.handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {
		pulls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		for i := range 10 { // 1s of pulling, a message every 100ms
			fmt.Fprintf(w, `{"status":"Downloading","progress":"%d/10"}`+"\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		pulled.Store(true)
		fmt.Fprintln(w, `{"status":"Downloaded newer image"}`)
	})
	d := timeout.New(300 * time.Millisecond)(fakeDriver(t, e.fakeDaemon))
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = d.CreateContainer(context.Background(), limitsConfig(contract.DefaultResourceLimits()))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	if n := pulls.Load(); n != 1 {
		t.Errorf("%d pulls for one image, want 1", n)
	}
}
