package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the package must leave no goroutine behind: rendering helpers,
// WriteSequence workers and sources are all owned and waited for.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
