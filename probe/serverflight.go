package probe

import (
	"cmp"
	"errors"
	"fmt"
	"io"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// serverFlight reads the server's side of a connection one event at a
// time, as the bytes arrive, and keeps the plaintext handshake messages for
// the Finished transcript.
type serverFlight struct {
	t          *tap
	r          *wire.FlightReader
	buf        []byte
	pending    []wire.Event
	err        error // of the last read, returned once pending is empty
	transcript []byte
}

func newServerFlight(t *tap) *serverFlight {
	return &serverFlight{t: t, r: wire.NewFlightReader(maxCapture), buf: make([]byte, 4096)}
}

// next returns the next event, reading from the connection when none is
// pending. A read error (io.EOF for a closed connection) or a malformed
// stream ends the flight.
func (f *serverFlight) next() (wire.Event, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return wire.Event{}, f.err
		}
		n, err := f.t.Read(f.buf)
		if n > 0 {
			var ferr error
			f.pending, ferr = f.r.Feed(f.buf[:n])
			err = cmp.Or(ferr, err)
		}
		f.err = err
	}
	ev := f.pending[0]
	f.pending = f.pending[1:]
	if ev.Kind == wire.EventMessage {
		f.transcript = append(f.transcript, ev.Message.Marshal()...)
	}
	return ev, nil
}

// errAlert marks an offer the server answered with a fatal alert: a
// verdict on that session (it will not be resumed), not a network failure.
var errAlert = errors.New("server answered with alert")

// serverHello reads until the server's ServerHello, a fatal alert, the end
// of the connection or the capture limit.
func (f *serverFlight) serverHello() (*wire.ServerHello, error) {
	for {
		ev, err := f.next()
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("connection closed before a ServerHello")
		case err != nil:
			return nil, err
		case ev.ServerHello != nil:
			return ev.ServerHello, nil
		case ev.Kind == wire.EventAlert && ev.Alert.Fatal():
			return nil, fmt.Errorf("%w %s", errAlert, ev.Alert)
		}
	}
}

// finished12 reads the rest of the server's flight of a resumed handshake:
// plaintext handshake messages (perhaps a NewSessionTicket), then, after
// ChangeCipherSpec, its protected Finished.
func (f *serverFlight) finished12(keys *wire.Keys12) (wire.HandshakeMessage, error) {
	for {
		ev, err := f.next()
		if err != nil {
			return wire.HandshakeMessage{}, fmt.Errorf("reading the server's Finished: %w", err)
		}
		switch {
		case ev.Kind == wire.EventAlert && ev.Alert.Fatal():
			return wire.HandshakeMessage{}, fmt.Errorf("server sent alert %s", ev.Alert)
		case ev.Kind == wire.EventProtected:
			return keys.ReadServerFinished(ev.Record)
		} // a warning alert (unrecognized_name) changes nothing
	}
}
