package probe

import "context"

// earlyData is filled in below.
func (h *handshaker) earlyData(ctx context.Context) (accepted, replay *bool) { return nil, nil }
