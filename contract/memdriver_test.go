package contract_test

import (
	"errors"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
)

// TestDriverRefusesUnprintableSessionID checks the rule end to end: a
// driver that validates with ValidateContainerConfig refuses a session id
// that is not printable, with a CONFIGURATION error, and creates nothing.
func TestDriverRefusesUnprintableSessionID(t *testing.T) {
	for _, tt := range unprintable {
		t.Run(tt.name, func(t *testing.T) {
			d := memdriver.New()
			_, err := d.CreateContainer(t.Context(), contract.NewContainerConfig(tt.s, "alpine:3.20"))
			if !errors.Is(err, contract.ErrConfiguration) {
				t.Fatalf("CreateContainer with session id %q = %v, want a CONFIGURATION error", tt.s, err)
			}
			if !contract.Printable(err.Error()) {
				t.Errorf("error text is not printable: %q", err.Error())
			}
			got, err := d.ListContainers(t.Context(), contract.ContainerFilter{})
			if err != nil || len(got) != 0 {
				t.Errorf("ListContainers = %v, %v; want no containers", got, err)
			}
		})
	}
}
