//go:build unix

package history

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockPath takes an exclusive lock on path (created if need be) that lasts
// until the returned file is closed or the process ends, however it ends.
// Two exporters writing one history would replace each other's snapshot
// and journal, losing events either had acknowledged.
func lockPath(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked: another process keeps this history", path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}
