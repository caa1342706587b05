package telemetry

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test here starts goroutines (paho clients, brokers, servers); none may
// outlive the test binary.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
