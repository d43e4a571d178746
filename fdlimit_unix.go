//go:build unix

package main

import "syscall"

// fdLimit returns RLIMIT_NOFILE. Go (since 1.19) has already raised the
// soft limit to the hard one when the process started, so the soft value is
// what the exporter can use.
func fdLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	return uint64(l.Cur), uint64(l.Max), nil
}
