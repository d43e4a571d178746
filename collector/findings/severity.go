package findings

import "fmt"

// Severity ranks a finding the way the alert with the same meaning is
// labelled (`severity` in alerts/resumption-alerts.yml).
type Severity int

const (
	// Info: a fact worth knowing, not a defect on its own.
	Info Severity = iota + 1
	// Warning: a posture that widens the forward-secrecy exposure.
	Warning
	// Critical: a posture that breaks clients or exposes traffic now.
	Critical
)

var severityNames = map[Severity]string{Info: "info", Warning: "warning", Critical: "critical"}

func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads a severity as the alerts spell it: info, warning or
// critical.
func ParseSeverity(name string) (Severity, error) {
	for s, n := range severityNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want info, warning or critical", name)
}

// MarshalText writes the severity by name, for JSON reports.
func (s Severity) MarshalText() ([]byte, error) {
	if _, ok := severityNames[s]; !ok {
		return nil, fmt.Errorf("unknown severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity by name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
