package wire

import (
	"cmp"
	"errors"
	"fmt"
)

// Flight12 is what the server's plaintext part of a TLS 1.2 handshake
// showed.
type Flight12 struct {
	ServerHello *ServerHello
	// Tickets holds the NewSessionTicket messages, in order.
	Tickets []NewSessionTicket12
	// Alert is the first plaintext alert the server sent, if any.
	Alert *Alert
	// SawChangeCipherSpec: the server reached its ChangeCipherSpec; after
	// it everything is encrypted and not read.
	SawChangeCipherSpec bool
	// SawCertificate: the server sent a Certificate, so this was a full
	// handshake, not a resumption.
	SawCertificate bool
}

// ParseFlight12 reads a captured TLS 1.2 server stream: every plaintext
// handshake message up to the server's ChangeCipherSpec, and a plaintext
// alert if the server sent one. A stream that stops early (an incomplete
// record or message) is not an error as long as it held a ServerHello or an
// alert. Malformed input is an error; the flight is then still returned
// with what was read before it.
//
// A ServerHello selecting TLS 1.3 ends the reading: what follows is
// encrypted (see ParseFlight13).
func ParseFlight12(stream []byte) (*Flight12, error) {
	f := &Flight12{}
	events, err := NewFlightReader(len(stream)).Feed(stream)
	if rerr := f.read(events); rerr != nil || err != nil {
		return f, fmt.Errorf("TLS 1.2 server flight: %w", cmp.Or(rerr, err))
	}
	if f.ServerHello == nil && f.Alert == nil {
		return f, errors.New("TLS 1.2 server flight: no ServerHello or alert in the captured bytes")
	}
	return f, nil
}

func (f *Flight12) read(events []Event) error {
	for _, ev := range events {
		done, err := f.handle(ev)
		if err != nil {
			return fmt.Errorf("record %d: %w", ev.Index, err)
		}
		if done {
			return nil
		}
	}
	return nil
}

// handle takes one event of a FlightReader and says whether the flight's
// plaintext part ended (ChangeCipherSpec, a fatal alert, a TLS 1.3
// ServerHello or HelloRetryRequest).
func (f *Flight12) handle(ev Event) (done bool, err error) {
	switch ev.Kind {
	case EventChangeCipherSpec:
		f.SawChangeCipherSpec = true
		return true, nil
	case EventAlert:
		keepFirstAlert(&f.Alert, ev.Alert)
		return ev.Alert.Fatal(), nil
	case EventProtected:
		return true, errors.New("application data before ChangeCipherSpec")
	}
	switch m := ev.Message; m.Type {
	case typeServerHello:
		if f.ServerHello != nil {
			return true, errors.New("second ServerHello")
		}
		f.ServerHello = ev.ServerHello
		return f.ServerHello.Version() >= VersionTLS13 || f.ServerHello.HelloRetryRequest, nil
	case typeCertificate:
		f.SawCertificate = true
	case typeNewSessionTicket:
		t, err := ParseNewSessionTicket12(m.Body)
		if err != nil {
			return true, err
		}
		f.Tickets = append(f.Tickets, *t)
	}
	return false, nil
}

// keepFirstAlert stores a in *first unless an earlier one is there.
func keepFirstAlert(first **Alert, a Alert) {
	if *first == nil {
		*first = &a
	}
}

// Flight13 is what a TLS 1.3 server sent, as far as the client can read it.
type Flight13 struct {
	// ServerHellos holds the plaintext ServerHellos: a HelloRetryRequest
	// first if the server sent one, then the ServerHello.
	ServerHellos []*ServerHello
	// Tickets holds the NewSessionTicket messages of the application epoch.
	Tickets []NewSessionTicket13
	// Alert is the first alert, plaintext or decrypted.
	Alert *Alert
}

// ServerHello returns the last ServerHello, the one that is not a
// HelloRetryRequest, or nil.
func (f *Flight13) ServerHello() *ServerHello {
	if n := len(f.ServerHellos); n > 0 && !f.ServerHellos[n-1].HelloRetryRequest {
		return f.ServerHellos[n-1]
	}
	return nil
}

// ParseFlight13 reads a captured TLS 1.3 server stream: the plaintext
// ServerHello(s), then the application_data records. Those are
// trial-decrypted with the application traffic secret appSecret
// (SERVER_TRAFFIC_SECRET_0): the records that fail before the first success
// are the handshake epoch, encrypted under other keys, and are skipped;
// after the first success every record must decrypt. The NewSessionTicket
// messages and alerts inside become Tickets and Alert.
//
// suite 0 means the suite the ServerHello selected. As in ParseFlight12, an
// incomplete tail is not an error when a ServerHello or alert was read.
func ParseFlight13(stream []byte, suite uint16, appSecret []byte) (*Flight13, error) {
	f := &Flight13{}
	events, err := NewFlightReader(len(stream)).Feed(stream)
	if rerr := f.read(events, suite, appSecret); rerr != nil || err != nil {
		return f, fmt.Errorf("TLS 1.3 server flight: %w", cmp.Or(rerr, err))
	}
	if len(f.ServerHellos) == 0 && f.Alert == nil {
		return f, errors.New("TLS 1.3 server flight: no ServerHello or alert in the captured bytes")
	}
	return f, nil
}

func (f *Flight13) read(events []Event, suite uint16, appSecret []byte) error {
	var inner handshakeReassembler
	var dec *decrypter
	decrypting := false // the first application-epoch record was found
	for _, ev := range events {
		i := ev.Index
		switch ev.Kind {
		case EventChangeCipherSpec:
			// Middlebox compatibility (RFC 8446 §D.4): carries nothing.
		case EventAlert:
			keepFirstAlert(&f.Alert, ev.Alert)
			return nil
		case EventMessage:
			if decrypting {
				return fmt.Errorf("record %d: plaintext handshake record after encryption started", i)
			}
			if ev.Message.Type != typeServerHello {
				return fmt.Errorf("record %d: plaintext handshake message type %d, want ServerHello", i, ev.Message.Type)
			}
			if len(f.ServerHellos) == 2 || (len(f.ServerHellos) == 1 && !f.ServerHellos[0].HelloRetryRequest) {
				return fmt.Errorf("record %d: unexpected ServerHello after %d", i, len(f.ServerHellos))
			}
			f.ServerHellos = append(f.ServerHellos, ev.ServerHello)
		case EventProtected:
			if ev.Record.Type != RecordApplicationData {
				return fmt.Errorf("record %d: record type %d after a ChangeCipherSpec before the ServerHello", i, ev.Record.Type)
			}
			if dec == nil {
				if len(appSecret) == 0 {
					return fmt.Errorf("record %d: %w", i, errNoSecret)
				}
				if suite == 0 {
					sh := f.ServerHello()
					if sh == nil {
						return fmt.Errorf("record %d: encrypted record before a ServerHello", i)
					}
					suite = sh.CipherSuite
				}
				var err error
				if dec, err = newDecrypter(suite, appSecret); err != nil {
					return err
				}
			}
			typ, content, err := dec.Open(ev.Record)
			if err != nil {
				if !decrypting {
					continue // a handshake-epoch record
				}
				return fmt.Errorf("record %d: %w", i, err)
			}
			decrypting = true
			done, err := f.handleInner(dec, &inner, typ, content)
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			if done {
				return nil
			}
		}
	}
	return nil
}

// handleInner takes the content of one decrypted record and says whether
// reading should stop.
func (f *Flight13) handleInner(dec *decrypter, hs *handshakeReassembler, typ uint8, content []byte) (done bool, err error) {
	switch typ {
	case RecordAlert:
		a, err := ParseAlert(content)
		if err == nil {
			keepFirstAlert(&f.Alert, a)
		}
		return true, err
	case RecordHandshake:
		msgs, err := hs.Add(content)
		if err != nil {
			return true, err
		}
		for _, m := range msgs {
			switch m.Type {
			case typeNewSessionTicket:
				t, err := ParseNewSessionTicket13(m.Body)
				if err != nil {
					return true, err
				}
				f.Tickets = append(f.Tickets, *t)
			case typeKeyUpdate:
				// The records after this one use the next secret. A
				// KeyUpdate must end its record (RFC 8446 §5.1).
				if hs.Pending() != 0 {
					return true, errors.New("KeyUpdate not at a record boundary")
				}
				if err := dec.KeyUpdate(); err != nil {
					return true, err
				}
			}
		}
	case RecordApplicationData:
		// The application's bytes: not ours to read.
	default:
		return true, fmt.Errorf("inner content type %d", typ)
	}
	return false, nil
}
