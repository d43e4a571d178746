package testservers

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Bounds of a DelayProxy: it is a measuring instrument for loopback, not a
// server, and must never outlive its test or pile up connections.
const (
	// delayProxyMaxSockets bounds the sockets one proxy holds open, two
	// per proxied connection; a connection over it is closed at once.
	delayProxyMaxSockets = 128
	// delayProxyConnLife bounds each proxied connection.
	delayProxyConnLife = 30 * time.Second
	// delayProxyChunk is the most one read takes from either side.
	delayProxyChunk = 32 << 10
	// delayProxyQueue bounds the chunks in flight in each direction.
	delayProxyQueue = 64
)

// DelayProxy listens on a free port of 127.0.0.1 and forwards each
// connection to target (on loopback), holding every chunk of bytes for
// oneWay in each direction, so that a loopback peer looks 2×oneWay round
// trips away. It also models the TCP handshake a real network would cost:
// the client's connect returns at once (the proxy accepts it), so the
// client's first bytes are held until a round trip plus oneWay after
// accept, as they would have reached a server that far away. Half-closes
// are passed on, so close_notify-then-FIN sequences stay intact. The proxy
// stops when the test ends, closing its listener and every connection.
func DelayProxy(t testing.TB, target string, oneWay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testservers: delay proxy listen: %v", err)
	}
	p := &delayProxy{target: target, oneWay: oneWay, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go p.serve(ln)
	return ln.Addr().String()
}

type delayProxy struct {
	target string
	oneWay time.Duration
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (p *delayProxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted := time.Now()
		if !p.track(c) {
			c.Close() // over the bound, or stopping
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.forward(c, accepted)
		}()
	}
}

// forward runs one proxied connection until both directions have ended.
func (p *delayProxy) forward(client net.Conn, accepted time.Time) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	deadline := accepted.Add(delayProxyConnLife)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	var wg sync.WaitGroup
	wg.Add(2)
	// A server 2×oneWay away would see the client's first byte 3×oneWay
	// after its SYN: one round trip of TCP handshake, then the trip over.
	go p.pipe(&wg, server, client, accepted.Add(3*p.oneWay))
	go p.pipe(&wg, client, server, time.Time{})
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk written oneWay after it was read (and
// not before notBefore), then half-closes dst.
func (p *delayProxy) pipe(wg *sync.WaitGroup, dst, src net.Conn, notBefore time.Time) {
	defer wg.Done()
	q := make(chan chunk, delayProxyQueue)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, delayProxyChunk)
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(p.oneWay)
				if due.Before(notBefore) {
					due = notBefore
				}
				q <- chunk{buf[:n], due}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			src.Close() // the peer is gone: stop reading, unblock the reader
			for range q {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.conns) >= delayProxyMaxSockets {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *delayProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
}
