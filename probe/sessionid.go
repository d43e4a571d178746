package probe

import (
	"context"
	"fmt"
	"time"
)

// issuedSessionID reads the session a full TLS 1.2 handshake's ServerHello
// named by session ID, nil when it named none (the server keeps no cache).
func (h *handshaker) issuedSessionID(fh *fullHandshake) (*session12, error) {
	f, err := flight12(fh.tap.received())
	if err != nil {
		return nil, fmt.Errorf("read ServerHello of %s: %w", h.addr, err)
	}
	if len(f.ServerHello.SessionID) == 0 {
		return nil, nil
	}
	return &session12{sessionID: f.ServerHello.SessionID, suite: fh.state.CipherSuite,
		ems: f.ServerHello.ExtendedMasterSecret, master: fh.masterSecret()}, nil
}

// closeDeadline is how long a connection's end may wait for the server's
// close: Module.TicketWait, never past the probe's own deadline.
func (h *handshaker) closeDeadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(h.module.TicketWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	return deadline
}
