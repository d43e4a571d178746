//go:build !unix

package history

import "os"

// lockPath creates path; without flock, it does not keep another process
// out.
func lockPath(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
