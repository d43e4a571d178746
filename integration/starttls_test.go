package integration

import (
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

type starttlsCase struct {
	name     string
	protocol starttls.Protocol
	start    func(t *testing.T, pki *testservers.PKI) *testservers.Server
	want     map[string]float64
	absent   []string
	issued   map[probe.Mechanism]bool
}

func TestStartTLSServers(t *testing.T) {
	cases := []starttlsCase{
		{
			name:     "postfix smtpd, Debian's TLS settings",
			protocol: starttls.SMTP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "postfix")
				return testservers.StartPostfix(t, pki, "")
			},
			want: with(both, map[string]float64{sessionID: 0, ticket12: 1, psk: 1, hint12: 7200, hint13: 7200}),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			p := newProber(t, pki, func(m *probe.Module) { m.StartTLS.Protocol = c.protocol })
			o := p.probe(t, srv.Addr)
			t.Logf("published:\n%s", o)
			o.expect(t, c.want, c.absent...)
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
	}
}
