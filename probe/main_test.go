package probe

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// probe must end its handshakes, readers and timers, whatever its target did.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
