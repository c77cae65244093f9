package tracing_test

import (
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
)

// TestUnprintableSessionIDNotRecorded: the tracing layer runs before
// validation, so it sees session IDs that validation will refuse; one that
// could forge lines or inject terminal escapes is left out of the span.
func TestUnprintableSessionIDNotRecorded(t *testing.T) {
	for _, sid := range []string{"a\u202Eb", "a\u0085b", "a\u2028b", "a\x1b[31mb", "a\xffb"} {
		tel := newTelemetry(t)
		d := middleware.Chain(tel.middleware(), middleware.Validate())(memdriver.New())
		_, err := d.CreateContainer(t.Context(), contract.NewContainerConfig(sid, "alpine:3.20"))
		if err == nil {
			t.Errorf("%q: created", sid)
		}
		for _, kv := range tel.onlySpan(t).Attributes() {
			if kv.Key == "session.id" {
				t.Errorf("%q: session.id = %q recorded", sid, kv.Value.AsString())
			}
		}
	}
	tel := newTelemetry(t)
	d := tel.middleware()(memdriver.New())
	if _, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("séance 1", "alpine:3.20")); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range tel.onlySpan(t).Attributes() {
		found = found || (kv.Key == "session.id" && kv.Value.AsString() == "séance 1")
	}
	if !found {
		t.Error("a printable session.id is not recorded")
	}
}
