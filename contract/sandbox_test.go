package contract_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

func TestValidateExecOptions(t *testing.T) {
	tests := []struct {
		give contract.ExecOptions
		want []string // issue paths; none for valid options
	}{
		{give: contract.ExecOptions{Command: []string{"/workload", "print", "1"}}},
		{give: contract.ExecOptions{Command: []string{"ls"}, WorkingDir: "/data", Env: map[string]string{"A": "b"}, MaxOutput: contract.MaxExecOutputLimit}},
		{give: contract.ExecOptions{}, want: []string{"command"}},
		{give: contract.ExecOptions{Command: []string{""}}, want: []string{"command.0"}},
		{give: contract.ExecOptions{Command: []string{"ls", "a\x00"}}, want: []string{"command.1"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, Env: map[string]string{"A=B": "", "C": "\x00"}}, want: []string{"env.A=B", "env.C"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, WorkingDir: "data"}, want: []string{"workingDir"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, WorkingDir: "/data/../etc"}, want: []string{"workingDir"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, MaxOutput: -1, Timeout: -1}, want: []string{"maxOutput", "timeout"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, MaxOutput: contract.MaxExecOutputLimit + 1}, want: []string{"maxOutput"}},
		{give: contract.ExecOptions{Command: []string{"ls"}, Stdin: make([]byte, contract.MaxExecStdin+1)}, want: []string{"stdin"}},
	}
	for _, tt := range tests {
		err := contract.ValidateExecOptions(tt.give)
		if got := issuePaths(err); !slices.Equal(got, tt.want) {
			t.Errorf("ValidateExecOptions(%q) issues at %q, want %q (%v)", tt.give.Command, got, tt.want, err)
		}
		if err != nil && (!errors.Is(err, contract.ErrConfiguration) || contract.IsRetryable(err)) {
			t.Errorf("ValidateExecOptions(%q) = %v, want a CONFIGURATION error", tt.give.Command, err)
		}
	}
	if got := (contract.ExecOptions{}).OutputLimit(); got != contract.DefaultExecOutputLimit {
		t.Errorf("OutputLimit of zero options = %d, want %d", got, contract.DefaultExecOutputLimit)
	}
}

func TestValidateContainerPath(t *testing.T) {
	for _, p := range []string{"/", "/data", "/data/sub/file.txt"} {
		if err := contract.ValidateContainerPath(p); err != nil {
			t.Errorf("ValidateContainerPath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "data", "./data", "/data/", "/data//x", "/data/../etc", "/da\x00ta", "/" + strings.Repeat("a", contract.MaxPathLen)} {
		if err := contract.ValidateContainerPath(p); !errors.Is(err, contract.ErrConfiguration) {
			t.Errorf("ValidateContainerPath(%.20q) = %v, want CONFIGURATION", p, err)
		}
	}
}

func issuePaths(err error) []string {
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var paths []string
	for _, is := range ve.Issues {
		paths = append(paths, is.Path)
	}
	return paths
}
