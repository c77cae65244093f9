package contract_test

import (
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

func TestReapOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hourAgo := now.Add(-time.Hour)
	for _, o := range []contract.ReapOptions{{}, {MaxAge: -time.Second}, {DryRun: true}} {
		err := o.Validate()
		if contract.CodeOf(err) != contract.CodeConfiguration || contract.IsRetryable(err) {
			t.Errorf("Validate(%+v) = %v, want a CONFIGURATION error, not retryable", o, err)
		}
	}
	for _, tc := range []struct {
		name    string
		opts    contract.ReapOptions
		session string
		created time.Time
		want    bool
	}{
		{"live session", contract.ReapOptions{LiveSessions: []string{"a"}}, "a", hourAgo, false},
		{"gone session", contract.ReapOptions{LiveSessions: []string{"a"}}, "b", hourAgo, true},
		{"no session live", contract.ReapOptions{LiveSessions: []string{}}, "a", now, true},
		{"no session: left to MaxAge", contract.ReapOptions{LiveSessions: []string{}}, "", hourAgo, false},
		{"sessions ignored", contract.ReapOptions{MaxAge: 2 * time.Hour}, "b", hourAgo, false},
		{"older than MaxAge", contract.ReapOptions{MaxAge: time.Minute}, "a", hourAgo, true},
		{"exactly MaxAge", contract.ReapOptions{MaxAge: time.Hour}, "a", hourAgo, false},
		{"creation unknown", contract.ReapOptions{MaxAge: time.Minute}, "a", time.Time{}, false},
		{"live but old", contract.ReapOptions{LiveSessions: []string{"a"}, MaxAge: time.Minute}, "a", hourAgo, true},
	} {
		if err := tc.opts.Validate(); err != nil {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
		if got := tc.opts.Gone(tc.session, tc.created, now); got != tc.want {
			t.Errorf("%s: Gone(%q, %v) = %v, want %v", tc.name, tc.session, tc.created, got, tc.want)
		}
	}
}
