package dockerdriver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

// A start the daemon refuses because an interrupted start left the
// container's network endpoint behind (dockerd stopped in the middle of
// a start) is a failure of the engine's state that its restart cleans up,
// not an authorization problem, although dockerd answers 403.
func TestStartStaleEndpoint(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	const msg = "endpoint with name resilient-k7501f99461aeea477e5d05b0 already exists in network bridge"
	f.handle("POST /containers/"+fakeID+"/start", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": msg})
	})
	d := fakeDriver(t, f)
	err := d.StartContainer(context.Background(), fakeID)
	wantCode(t, "start with a stale endpoint", err, contract.CodeContainerStart, true)
}
