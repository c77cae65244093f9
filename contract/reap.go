package contract

import (
	"context"
	"slices"
	"time"
)

// OpReap is the operation of a [Reaper]'s own errors. The errors of the
// removals it makes carry OpReap with the code of the matching remove
// (CONTAINER_REMOVE, VOLUME_REMOVE, NETWORK_REMOVE).
const OpReap Op = "Reap"

// Reaper is implemented by drivers that can remove their own orphans:
// the managed resources of sessions that are gone, or older than an age,
// left behind by programs that crashed or lost an answer after the engine
// acted. Only resources that carry the driver's managed label are ever
// touched. The middleware does not forward Reap: call it on the driver
// itself, from one place, on a schedule.
type Reaper interface {
	// Reap removes what opts select and reports it. It goes on after a
	// failure and returns every error joined, with the report of what it
	// did remove. Options that select nothing are a CONFIGURATION error.
	Reap(ctx context.Context, opts ReapOptions) (ReapReport, error)
}

// ReapOptions choose what a [Reaper] removes. At least one of
// LiveSessions and MaxAge must be set.
type ReapOptions struct {
	// LiveSessions are the sessions still in use. When non-nil, every
	// managed container of a session not listed is removed (a container
	// without a session is left to MaxAge), and, on drivers whose volumes
	// carry a session, the managed volumes of such a session. An empty,
	// non-nil list means no session is live. Nil leaves sessions out of
	// the decision.
	LiveSessions []string
	// MaxAge, when positive, removes managed containers created longer ago
	// than MaxAge whatever their session, and managed volumes and networks
	// that old which no container uses.
	MaxAge time.Duration
	// DryRun reports what would be removed without removing anything.
	DryRun bool
}

// Validate returns a CONFIGURATION error, of OpReap, when opts select
// nothing: no LiveSessions and no positive MaxAge.
func (o ReapOptions) Validate() error {
	if o.LiveSessions == nil && o.MaxAge <= 0 {
		return NewError(CodeConfiguration, OpReap, "", "ReapOptions needs LiveSessions or a positive MaxAge", nil)
	}
	return nil
}

// Gone reports whether a managed resource of session (empty for none)
// created at created (zero when unknown) is to be removed at now: its
// session is not among LiveSessions, or it is older than MaxAge.
func (o ReapOptions) Gone(session string, created, now time.Time) bool {
	if o.LiveSessions != nil && session != "" && !slices.Contains(o.LiveSessions, session) {
		return true
	}
	return o.Old(created, now)
}

// Old reports whether a resource created at created (zero when unknown)
// is older than a positive MaxAge at now.
func (o ReapOptions) Old(created, now time.Time) bool {
	return o.MaxAge > 0 && !created.IsZero() && now.Sub(created) > o.MaxAge
}

// ReapReport lists what a [Reaper] removed (or, with DryRun, would
// remove): container IDs, volume names and network IDs, as the driver's
// other methods name them.
type ReapReport struct {
	Containers []string
	Volumes    []string
	Networks   []string
}
