package contract_test

import (
	"errors"
	"fmt"

	"github.com/resilientdriver/resilient/contract"
)

func ExampleValidateContainerConfig() {
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Resources.Memory = 0
	cfg.Volumes = []contract.VolumeMount{{Source: "data", Target: "relative/path"}}

	err := contract.ValidateContainerConfig(cfg)
	fmt.Println(errors.Is(err, contract.ErrConfiguration))
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		for _, is := range ve.Issues {
			fmt.Printf("%s: %s\n", is.Path, is.Message)
		}
	}
	// Output:
	// true
	// resources.memory: Number must be greater than or equal to 1
	// volumes.0.target: must be an absolute, clean path other than /
}

func ExampleDecodeContainerConfig() {
	_, err := contract.DecodeContainerConfig([]byte(`{"sessionId": "s1", "image": 42}`))
	var ve *contract.ValidationError
	if errors.As(err, &ve) {
		for _, is := range ve.Issues[:3] {
			fmt.Printf("%s: %s\n", is.Path, is.Message)
		}
	}
	// Output:
	// image: Expected string, received number
	// env: Required
	// labels: Required
}

func ExampleDriverError() {
	// A driver reports a missing container; callers test the code, never
	// the text.
	var err error = contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "4f2a", "", nil)
	err = fmt.Errorf("start sandbox: %w", err)

	fmt.Println(err)
	fmt.Println(errors.Is(err, contract.ErrContainerNotFound))
	fmt.Println(contract.IsRetryable(err))
	// Output:
	// start sandbox: StartContainer 4f2a: container not found
	// true
	// false
}

func ExampleIsRetryable() {
	busy := &contract.DriverError{Code: contract.CodeRateLimited, Retryable: true, RetryAfter: 250e6}
	fmt.Println(contract.IsRetryable(busy), contract.RetryAfter(busy))
	// Output: true 250ms
}

func ExampleNewSecurityOptions() {
	// Start from the secure defaults and loosen only what the workload needs.
	s := contract.NewSecurityOptions(contract.AddCapabilities("NET_BIND_SERVICE"))
	fmt.Printf("%+v\n", s)
	// Output: {ReadOnly:true NoNewPrivileges:true User:65534:65534 Capabilities:{Drop:[ALL] Add:[NET_BIND_SERVICE]}}
}
