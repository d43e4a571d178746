package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// Every connection of one probe goes to the one address it resolved and
// reports, also when the name has several (localhost: 127.0.0.1 and, where
// the hosts file says so, ::1, both served here on the same port). The
// figures follow blackbox_exporter: family, FNV-32a of the IP's bytes (4
// for IPv4, 16 for IPv6), DNS time only for names.
func TestEveryConnectionDialsOneAddress(t *testing.T) {
	pki := testservers.NewPKI(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	var mu sync.Mutex
	conns := map[string]int{}
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c.LocalAddr().String()]++
			mu.Unlock()
			go func() {
				tc := tls.Server(c, cfg)
				defer tc.Close()
				drain(tc)
			}()
		}
	}
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln4.Close() })
	go serve(ln4)
	port := strconv.Itoa(ln4.Addr().(*net.TCPAddr).Port)
	type target struct {
		target string
		name   bool
	}
	targets := []target{{"localhost:" + port, true}, {"127.0.0.1:" + port, false}}
	if ln6, err := net.Listen("tcp6", "[::1]:"+port); err == nil {
		t.Cleanup(func() { ln6.Close() })
		go serve(ln6)
		targets = append(targets, target{"[::1]:" + port, false})
	}

	for _, tt := range targets {
		t.Run(tt.target, func(t *testing.T) {
			mu.Lock()
			clear(conns)
			mu.Unlock()
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			m := testModule(t, pki, func(m *Module) { m.TLSConfig.ServerName = "localhost" })
			r := Run(context.Background(), tt.target, "test", m, NewSessions(SessionsOptions{}), logger)
			if !r.Success {
				t.Fatalf("%s", r.Failure)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(conns) != 1 || conns[r.Addr] < 4 {
				t.Errorf("connections per address %v; want all of them (at least 4) at %s", conns, r.Addr)
			}
			host, _, _ := net.SplitHostPort(r.Addr)
			ip := net.ParseIP(host)
			wantProto := 6
			if ip.To4() != nil {
				wantProto = 4
			}
			h := fnv.New32a()
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4 // blackbox_exporter's ipHash: To4, else To16
			}
			h.Write(ip)
			if r.IPProtocol != wantProto || r.IPAddrHash != h.Sum32() {
				t.Errorf("ip protocol %d, hash %d; want %d, %d", r.IPProtocol, r.IPAddrHash, wantProto, h.Sum32())
			}
			if (r.DNSLookup > 0) != tt.name {
				t.Errorf("DNS lookup time %s for %s", r.DNSLookup, tt.target)
			}
			if !strings.Contains(logs.String(), "msg=Probing") || !strings.Contains(logs.String(), "addr="+r.Addr) {
				t.Errorf("debug output does not name the dialed address %s:\n%s", r.Addr, logs.String())
			}
		})
	}
}
