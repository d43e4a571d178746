package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// isTerminal reports whether w is a character device, which is how a
// terminal looks to os.File.Stat.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// colourWanted honours NO_COLOR (https://no-color.org) and dumb terminals.
func colourWanted() bool {
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// ANSI styles.
const (
	styleBold   = "1"
	styleRed    = "31"
	styleGreen  = "32"
	styleYellow = "33"
	styleCyan   = "36"
)

// painter styles text when colour is on and passes it through otherwise.
type painter bool

func (p painter) paint(style, s string) string {
	if !p {
		return s
	}
	return "\033[" + style + "m" + s + "\033[0m"
}

func (p painter) severity(s findings.Severity) string {
	name := fmt.Sprintf("%-8s", s)
	switch s {
	case findings.Critical:
		return p.paint(styleBold+";"+styleRed, name)
	case findings.Warning:
		return p.paint(styleYellow, name)
	default:
		return p.paint(styleCyan, name)
	}
}

func writeJSON(w io.Writer, rep checkReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

var mechanismLabels = map[string]string{
	string(probe.MechanismSessionID):     "session ID",
	string(probe.MechanismSessionTicket): "session ticket",
	string(probe.MechanismPSK):           "TLS 1.3 PSK",
}

// writeTargetText prints one target: a line per fact, then the findings and
// a verdict line.
func writeTargetText(w io.Writer, t targetReport, colour bool) {
	p := painter(colour)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-16s%s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "%s  module %s, server name %s\n", p.paint(styleBold, t.Target), t.Module, t.ServerName)
	if !t.Checked && len(t.Versions) == 0 {
		// No handshake completed: every line would repeat the error.
		fmt.Fprintf(w, "  %s\n\n", verdictText(p, t))
		return
	}
	if v := versionsText(t.Versions); v != "" {
		line("versions", "%s", v)
	}
	for _, m := range t.Mechanisms {
		text := strings.ReplaceAll(m.Status, "_", " ") + ": " + m.Reason
		if m.Status == statusResumed {
			text = p.paint(styleBold, "resumed") + ": " + m.Reason
		}
		if m.AcceptedMaxAgeSeconds != nil {
			text += fmt.Sprintf("; still resumed a session obtained %s earlier", human(seconds(*m.AcceptedMaxAgeSeconds)))
		}
		line(mechanismLabels[m.Mechanism], "%s", text)
	}
	for _, tk := range t.Tickets {
		line(tk.Version+" tickets", "%s", ticketText(tk))
	}
	if len(t.KeyFingerprints) > 0 {
		line("ticket key", "fingerprint %s", joinFingerprints(t.KeyFingerprints))
	}
	writeRotationText(line, t)
	if len(t.Findings) > 0 {
		line("findings", "%d", len(t.Findings))
	}
	for _, f := range t.Findings {
		fmt.Fprintf(w, "    %s %s  [%s]\n", p.severity(f.Severity), f.Summary, f.ID)
		fmt.Fprintf(w, "    %-8s fix: %s\n", "", f.RunbookURL)
	}
	fmt.Fprintf(w, "  %s\n\n", verdictText(p, t))
}

func versionsText(vs map[string]bool) string {
	var parts []string
	for _, v := range []uint16{probe.VersionTLS12, probe.VersionTLS13} {
		name := probe.VersionName(v)
		if ok, known := vs[name]; known {
			parts = append(parts, name+" "+map[bool]string{true: "yes", false: "no"}[ok])
		}
	}
	return strings.Join(parts, ", ")
}

func ticketText(tk ticketReport) string {
	var parts []string
	if tk.Count > 1 {
		parts = append(parts, fmt.Sprintf("%d per handshake", tk.Count))
	}
	format := tk.Format
	if tk.KeyNameBytes > 0 {
		format += fmt.Sprintf(", %d-byte key name", tk.KeyNameBytes)
	}
	parts = append(parts, format, fmt.Sprintf("lifetime %d s (%s)", tk.LifetimeSeconds, human(time.Duration(tk.LifetimeSeconds)*time.Second)))
	if tk.Version == probe.VersionName(probe.VersionTLS13) {
		if tk.MaxEarlyDataBytes > 0 {
			parts = append(parts, fmt.Sprintf("0-RTT up to %d bytes", tk.MaxEarlyDataBytes))
		} else {
			parts = append(parts, "no 0-RTT")
		}
	}
	return strings.Join(parts, ", ")
}

func joinFingerprints(fps []uint64) string {
	s := make([]string, len(fps))
	for i, fp := range fps {
		s[i] = fmt.Sprint(fp)
	}
	return strings.Join(s, ", ")
}

// writeRotationText says what is known of key rotation: from the history
// file, from the watch, or that a single probe cannot tell.
func writeRotationText(line func(string, string, ...any), t targetReport) {
	r := t.Rotation
	end := t.Start.Add(seconds(t.DurationSeconds))
	switch {
	case !r.Known:
		line("rotation", "unknown: %s", r.Reason)
	case r.Source == historyFile:
		text := fmt.Sprintf("exporter history since %s (%s): key first seen %s (%s ago)",
			r.Since.Format(time.RFC3339), human(seconds(r.WatchedSeconds)), r.KeyFirstSeen.Format(time.RFC3339), human(end.Sub(*r.KeyFirstSeen)))
		line("rotation", "%s, %s", text, rotationsText(r))
	case r.Rotations > 0:
		line("rotation", "rotated after %s (%s in %s of watching)", human(seconds(r.LastRotationIntervalSeconds)),
			rotationsText(r), human(seconds(r.WatchedSeconds)))
	case r.ActiveKeys == 1 && len(r.Keys) > 1:
		// The history saw the keys overlap (both in one probe, as in a
		// probe during a reload): not a rotation, for a balancer shows
		// the same. The sightings below show the change.
		line("rotation", "key in use for %s; %s overlapped it and then stopped (not counted as a rotation: one probe saw both)",
			human(end.Sub(*r.KeyFirstSeen)), plural(len(r.Keys)-1, "earlier key"))
	case r.ActiveKeys == 1:
		line("rotation", "key unchanged for %s (%d probes)", human(end.Sub(*r.KeyFirstSeen)), t.Probes)
	default:
		line("rotation", "%d keys in use, none replaced in %s (a balancer over servers with different keys, or a rotation not yet confirmed)",
			r.ActiveKeys, human(seconds(r.WatchedSeconds)))
	}
	if r.Source == historyWatch && r.ActiveWindowSeconds > 0 && r.Known {
		line("", "a key counts as replaced once unseen for %s (%d × --watch.interval)", human(seconds(r.ActiveWindowSeconds)), watchWindowProbes)
	}
	for i, k := range r.Keys {
		label := ""
		if i == 0 {
			label = "keys seen"
		}
		line(label, "%d  +%s … +%s (%d probes)", k.Fingerprint, human(k.FirstSeen.Sub(t.Start)), human(k.LastSeen.Sub(t.Start)), k.Probes)
	}
}

func rotationsText(r rotationReport) string {
	switch r.Rotations {
	case 0:
		return "no rotation seen"
	case 1:
		return "1 rotation"
	default:
		return fmt.Sprintf("%d rotations, the last after %s", r.Rotations, human(seconds(r.LastRotationIntervalSeconds)))
	}
}

func verdictText(p painter, t targetReport) string {
	switch {
	case !t.Checked:
		return p.paint(styleBold+";"+styleRed, "ERROR") + "  could not check: " + t.Error
	case t.Failing:
		return p.paint(styleBold+";"+styleRed, "FAIL") + "   " + countText(t.Findings) + "; " + t.HighestSeverity + " is at or above --fail-on"
	case len(t.Findings) == 0:
		return p.paint(styleBold+";"+styleGreen, "PASS") + "   no findings"
	default:
		return p.paint(styleBold+";"+styleGreen, "PASS") + "   " + countText(t.Findings) + ", none at or above --fail-on"
	}
}

// countText: "3 findings (1 warning, 2 info)".
func countText(fs []findingReport) string {
	n := map[findings.Severity]int{}
	for _, f := range fs {
		n[f.Severity]++
	}
	var parts []string
	for _, s := range []findings.Severity{findings.Critical, findings.Warning, findings.Info} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	noun := "findings"
	if len(fs) == 1 {
		noun = "finding"
	}
	return fmt.Sprintf("%d %s (%s)", len(fs), noun, strings.Join(parts, ", "))
}

// writeSummaryText ends a text report of several targets with one line.
func writeSummaryText(w io.Writer, rep checkReport) error {
	if rep.Summary.Targets < 2 {
		return nil
	}
	s := rep.Summary
	_, err := fmt.Fprintf(w, "%d targets: %d passing, %d failing at --fail-on %s, %d not checked; exit status %d\n",
		s.Targets, s.Passing, s.Failing, s.FailOn, s.NotChecked, s.ExitCode)
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// human rounds a duration for reading: tenths of a second below a minute,
// seconds below a day, minutes beyond.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 24*time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}
