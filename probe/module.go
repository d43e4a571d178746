package probe

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
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
	// TicketWait bounds how long a completed handshake waits, after the
	// client's close_notify, for the server's close, which is what brings
	// its TLS 1.3 NewSessionTickets. Servers that answer a close_notify
	// end the wait at once; it only runs out on servers that never do.
	TicketWait time.Duration `yaml:"ticket_wait,omitempty"`
	// FullHandshakeInterval is how long a session from an earlier probe
	// may stand in for a check's full handshake (see standin.go): a check
	// whose last full handshake is older makes one. 0 makes one on every
	// probe.
	FullHandshakeInterval time.Duration `yaml:"full_handshake_interval"`
	// Risks lists the risk checks to run (see Risk); DefaultRisks when
	// left out, none when empty.
	Risks []Risk `yaml:"risks"`
	// EarlyDataPayload is the application data the early_data check
	// sends as 0-RTT data, twice.
	EarlyDataPayload string `yaml:"early_data_payload"`
	// CrossNames lists other server names (SNI only) under which the
	// probe offers the sessions it obtained for the target's name: a
	// session one of them resumes breaks the isolation between virtual
	// hosts. The dialed address stays the target's.
	CrossNames []string  `yaml:"cross_names,omitempty"`
	TLSConfig  TLSConfig `yaml:"tls_config,omitempty"`
	// StartTLS, when set, runs a protocol's plaintext preamble on every
	// connection of the probe before its TLS handshake.
	StartTLS StartTLSConfig `yaml:"starttls,omitempty"`

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

// StartTLSConfig selects a STARTTLS preamble, for a mail, directory,
// file-transfer or database server that starts in plaintext and switches to
// TLS on request. In YAML it is a mapping, or just the protocol's name.
type StartTLSConfig struct {
	// Protocol is smtp, imap, pop3, ftp, postgres, ldap or xmpp; empty
	// means none (the port speaks TLS at once).
	Protocol starttls.Protocol `yaml:"protocol,omitempty"`
	// EHLOName is the name SMTP's EHLO announces; empty means this host's
	// name (or "localhost" when it is not a valid one).
	EHLOName string `yaml:"ehlo_name,omitempty"`
}

// UnmarshalYAML accepts the protocol alone as a shorthand: `starttls: smtp`
// is `starttls: {protocol: smtp}`.
func (c *StartTLSConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var p string
	if err := unmarshal(&p); err == nil {
		*c = StartTLSConfig{Protocol: starttls.Protocol(p)}
		return nil
	}
	type plain StartTLSConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("starttls: want a protocol name or a mapping of protocol and ehlo_name: %w", err)
	}
	return nil
}

// validate reports the first thing wrong with the STARTTLS settings.
func (c StartTLSConfig) validate() error {
	if err := c.Protocol.Validate(); err != nil {
		return &FieldError{Field: "starttls.protocol", Err: err}
	}
	if c.EHLOName == "" {
		return nil
	}
	if c.Protocol != starttls.SMTP {
		return fieldErr("starttls.ehlo_name", "ehlo_name is for protocol smtp, not %q", string(c.Protocol))
	}
	if err := starttls.ValidateEHLOName(c.EHLOName); err != nil {
		return &FieldError{Field: "starttls.ehlo_name", Err: err}
	}
	return nil
}

// DefaultModule holds the values a module gets for fields it leaves out.
var DefaultModule = Module{
	Timeout:             10 * time.Second,
	Checks:              Mechanisms,
	PreferredIPProtocol: "ip6",
	IPProtocolFallback:  true,
	TicketWait:          time.Second,
	// An hour bounds how stale the full-handshake duration a steady-state
	// probe reports can be; everything else it reports is read afresh.
	FullHandshakeInterval: time.Hour,
	Risks:                 DefaultRisks,
	EarlyDataPayload:      DefaultEarlyDataPayload,
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
		return fieldErr("timeout", "must be positive")
	}
	if m.TicketWait <= 0 || m.TicketWait >= m.Timeout {
		return fieldErr("ticket_wait", "%s must be positive and below timeout %s", m.TicketWait, m.Timeout)
	}
	if m.FullHandshakeInterval < 0 {
		return fieldErr("full_handshake_interval", "%s must not be negative", m.FullHandshakeInterval)
	}
	switch m.PreferredIPProtocol {
	case "ip4", "ip6":
	default:
		return fieldErr("preferred_ip_protocol", "%q: want ip4 or ip6", m.PreferredIPProtocol)
	}
	lo, okLo := versionsByName[m.TLSConfig.MinVersion]
	hi, okHi := versionsByName[m.TLSConfig.MaxVersion]
	if !okLo {
		return fieldErr("tls_config.min_version", "%q: want TLS12 or TLS13", m.TLSConfig.MinVersion)
	}
	if !okHi {
		return fieldErr("tls_config.max_version", "%q: want TLS12 or TLS13", m.TLSConfig.MaxVersion)
	}
	if lo > hi {
		return fieldErr("tls_config.min_version", "%s is above max_version %s", m.TLSConfig.MinVersion, m.TLSConfig.MaxVersion)
	}
	if (m.TLSConfig.CertFile == "") != (m.TLSConfig.KeyFile == "") {
		return fieldErr("tls_config.cert_file", "cert_file and key_file go together")
	}
	if err := m.StartTLS.validate(); err != nil {
		return err
	}
	seen := map[Mechanism]bool{}
	for _, c := range m.Checks {
		switch c {
		case MechanismSessionID, MechanismSessionTicket, MechanismPSK:
		default:
			return fieldErr("checks", "unknown mechanism %q (want session_id, session_ticket or psk)", c)
		}
		if seen[c] {
			return fieldErr("checks", "%q listed twice", c)
		}
		seen[c] = true
	}
	if len(m.EarlyDataPayload) > maxEarlyDataPayload {
		return fmt.Errorf("early_data_payload: %d bytes, at most %d", len(m.EarlyDataPayload), maxEarlyDataPayload)
	}
	if err := ValidateCrossNames(m.CrossNames); err != nil {
		return err
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
