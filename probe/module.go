package probe

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Protocol versions the exporter knows how to probe.
const (
	VersionTLS12 = tls.VersionTLS12
	VersionTLS13 = tls.VersionTLS13
)

// VersionName returns the name the exporter publishes for a protocol
// version, as blackbox_exporter does ("TLS 1.3").
func VersionName(v uint16) string {
	return tls.VersionName(v)
}

// Module says what to check on a target and how. It is decoded from one entry
// of the configuration file's `modules:` map.
type Module struct {
	// Timeout bounds the whole probe, every dial, read and write included.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Checks lists the resumption mechanisms to test.
	Checks []Mechanism `yaml:"checks,omitempty"`
	// PreferredIPProtocol is "ip4" or "ip6"; with IPProtocolFallback the
	// other family is used when the preferred one has no address.
	PreferredIPProtocol string `yaml:"preferred_ip_protocol,omitempty"`
	IPProtocolFallback  bool   `yaml:"ip_protocol_fallback,omitempty"`
	// TicketWait is how long to wait after a TLS 1.3 handshake for the
	// server's NewSessionTicket messages when none has arrived yet.
	TicketWait time.Duration `yaml:"ticket_wait,omitempty"`
	// Risks lists the risk checks to run (see Risk); DefaultRisks when
	// left out, none when empty.
	Risks []Risk `yaml:"risks"`
	// EarlyDataPayload is the application data the early_data check
	// sends as 0-RTT data, twice.
	EarlyDataPayload string    `yaml:"early_data_payload"`
	TLSConfig        TLSConfig `yaml:"tls_config,omitempty"`

	client *clientConfig // set by Compile
}

// TLSConfig is the client side of every handshake, in blackbox_exporter's
// vocabulary.
type TLSConfig struct {
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	// MinVersion and MaxVersion are "TLS12" or "TLS13" and bound the
	// protocol versions probed.
	MinVersion string `yaml:"min_version,omitempty"`
	MaxVersion string `yaml:"max_version,omitempty"`
}

// DefaultModule holds the values a module gets for fields it leaves out.
var DefaultModule = Module{
	Timeout:             10 * time.Second,
	Checks:              Mechanisms,
	PreferredIPProtocol: "ip6",
	IPProtocolFallback:  true,
	TicketWait:          time.Second,
	Risks:               DefaultRisks,
	EarlyDataPayload:    DefaultEarlyDataPayload,
	TLSConfig: TLSConfig{
		MinVersion: "TLS12",
		MaxVersion: "TLS13",
	},
}

// UnmarshalYAML fills a module from YAML, starting from DefaultModule.
func (m *Module) UnmarshalYAML(unmarshal func(any) error) error {
	*m = DefaultModule
	m.Checks = append([]Mechanism(nil), DefaultModule.Checks...)
	m.Risks = append([]Risk(nil), DefaultModule.Risks...)
	type plain Module
	if err := unmarshal((*plain)(m)); err != nil {
		return err
	}
	return m.Validate()
}

var versionsByName = map[string]uint16{"TLS12": VersionTLS12, "TLS13": VersionTLS13}

// Versions returns the protocol versions the module probes, lowest first.
func (m *Module) Versions() []uint16 {
	lo, hi := versionsByName[m.TLSConfig.MinVersion], versionsByName[m.TLSConfig.MaxVersion]
	var vs []uint16
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		if v >= lo && v <= hi {
			vs = append(vs, v)
		}
	}
	return vs
}

// Validate reports the first thing wrong with a module.
func (m *Module) Validate() error {
	if m.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	if m.TicketWait <= 0 || m.TicketWait >= m.Timeout {
		return fmt.Errorf("ticket_wait %s must be positive and below timeout %s", m.TicketWait, m.Timeout)
	}
	switch m.PreferredIPProtocol {
	case "ip4", "ip6":
	default:
		return fmt.Errorf("preferred_ip_protocol %q: want ip4 or ip6", m.PreferredIPProtocol)
	}
	lo, okLo := versionsByName[m.TLSConfig.MinVersion]
	hi, okHi := versionsByName[m.TLSConfig.MaxVersion]
	if !okLo || !okHi {
		return fmt.Errorf("tls_config min_version %q / max_version %q: want TLS12 or TLS13", m.TLSConfig.MinVersion, m.TLSConfig.MaxVersion)
	}
	if lo > hi {
		return fmt.Errorf("tls_config min_version %s is above max_version %s", m.TLSConfig.MinVersion, m.TLSConfig.MaxVersion)
	}
	if (m.TLSConfig.CertFile == "") != (m.TLSConfig.KeyFile == "") {
		return errors.New("tls_config cert_file and key_file go together")
	}
	seen := map[Mechanism]bool{}
	for _, c := range m.Checks {
		switch c {
		case MechanismSessionID, MechanismSessionTicket, MechanismPSK:
		default:
			return fmt.Errorf("checks: unknown mechanism %q (want session_id, session_ticket or psk)", c)
		}
		if seen[c] {
			return fmt.Errorf("checks: %q listed twice", c)
		}
		seen[c] = true
	}
	if len(m.EarlyDataPayload) > maxEarlyDataPayload {
		return fmt.Errorf("early_data_payload: %d bytes, at most %d", len(m.EarlyDataPayload), maxEarlyDataPayload)
	}
	return validateRisks(m.Risks)
}

// WithTimeout returns m with its timeout set to t, such as a scrape timeout
// shorter than the module's own. TicketWait is kept below it (halved to
// t/2 when it would reach t), so that a short scrape still leaves the
// handshakes time after waiting for TLS 1.3 tickets.
func (m Module) WithTimeout(t time.Duration) Module {
	m.Timeout = t
	if m.TicketWait >= t {
		m.TicketWait = t / 2
	}
	return m
}
