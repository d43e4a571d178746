package probe

import (
	"net"
	"sync"
	"time"
)

// maxCapture bounds what a tap keeps of the server's bytes. A server's first
// flight with a long certificate chain fits easily; a hostile server that
// streams forever only fills this much.
const maxCapture = 256 << 10

// maxSent bounds what a tap keeps of the client's bytes: a ClientHello.
const maxSent = 64 << 10

// tap is a net.Conn that keeps a copy of what the server sends and notes when
// the client first wrote and the server first answered. crypto/tls hides the
// fields a probe needs (lifetime hints, key names, the ServerHello itself);
// the tap lets the probe read them off the wire while crypto/tls does the
// cryptography.
type tap struct {
	net.Conn

	mu         sync.Mutex
	rx         []byte
	tx         []byte // the start of what the client sent: its ClientHello
	firstWrite time.Time
	firstRead  time.Time
}

func newTap(c net.Conn) *tap { return &tap{Conn: c} }

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.mu.Lock()
		if t.firstRead.IsZero() {
			t.firstRead = time.Now()
		}
		if room := maxCapture - len(t.rx); room > 0 {
			t.rx = append(t.rx, p[:min(n, room)]...)
		}
		t.mu.Unlock()
	}
	return n, err
}

func (t *tap) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.firstWrite.IsZero() {
		t.firstWrite = time.Now()
	}
	if room := maxSent - len(t.tx); room > 0 {
		t.tx = append(t.tx, p[:min(len(p), room)]...)
	}
	t.mu.Unlock()
	return t.Conn.Write(p)
}

// received returns a copy of everything the server sent so far.
func (t *tap) received() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.rx...)
}

// sent returns a copy of what the client sent so far (up to maxSent).
func (t *tap) sent() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.tx...)
}

// firstFlight is the time from the client's first byte (its ClientHello) to
// the server's first byte: the same measure for full and resumed handshakes.
func (t *tap) firstFlight() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstWrite.IsZero() || t.firstRead.IsZero() {
		return 0
	}
	return t.firstRead.Sub(t.firstWrite)
}
