package testservers

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	return ServeTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

// The proxy holds bytes oneWay in each direction, and a connection's first
// bytes a TCP handshake's round trip more; a half-close goes through.
func TestDelayProxyDelays(t *testing.T) {
	const oneWay = 20 * time.Millisecond
	addr := DelayProxy(t, echoServer(t), oneWay)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, want := range []time.Duration{4 * oneWay, 2 * oneWay} { // connect + round trip, then a round trip
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		var buf [4]byte
		if _, err := io.ReadFull(c, buf[:]); err != nil || string(buf[:]) != "ping" {
			t.Fatalf("exchange %d: %q, %v", i, buf, err)
		}
		if got := time.Since(start); got < want {
			t.Errorf("exchange %d took %s, want at least %s", i, got, want)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after our half-close: read %d, %v; want the server's close (EOF)", n, err)
	}
}

// Connections over the bound are closed at once; the others keep working.
func TestDelayProxyBoundsConnections(t *testing.T) {
	addr := DelayProxy(t, echoServer(t), time.Millisecond)
	conns := make([]net.Conn, delayProxyMaxSockets/2)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		conns[i] = c
		wg.Add(1)
		go func() { // an echo proves both of its sockets are open
			defer wg.Done()
			c.Write([]byte("x"))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Errorf("connection %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(10 * time.Second))
	extra.Write([]byte("x"))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("connection over the bound: read %d, %v; want it closed", n, err)
	}
}
