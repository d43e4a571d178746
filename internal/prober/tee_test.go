package prober

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// A record reaches each handler that wants its level, with the attributes
// and groups added through the tee, and no other.
func TestTeeHandler(t *testing.T) {
	var info, debug bytes.Buffer
	infoH := slog.NewTextHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo})
	debugH := slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})
	logger := slog.New(teeHandler{infoH, debugH}).With("target", "example.com:443", "module", "tls")

	logger.Debug("probing", "versions", 2)
	logger.Info("started")
	logger.WithGroup("tls").Warn("refused", "alert", "handshake_failure")

	tests := []struct {
		name       string
		got        string
		want, lack []string
	}{
		{"info handler", info.String(),
			[]string{
				`level=INFO msg=started target=example.com:443 module=tls`,
				`level=WARN msg=refused target=example.com:443 module=tls tls.alert=handshake_failure`,
			},
			[]string{"probing"}},
		{"debug handler", debug.String(),
			[]string{
				`level=DEBUG msg=probing target=example.com:443 module=tls versions=2`,
				`level=INFO msg=started target=example.com:443 module=tls`,
				`level=WARN msg=refused target=example.com:443 module=tls tls.alert=handshake_failure`,
			},
			nil},
	}
	for _, tt := range tests {
		if n := strings.Count(tt.got, "\n"); n != len(tt.want) {
			t.Errorf("%s: %d lines, want %d:\n%s", tt.name, n, len(tt.want), tt.got)
		}
		for _, w := range tt.want {
			if !strings.Contains(tt.got, w) {
				t.Errorf("%s lacks %q:\n%s", tt.name, w, tt.got)
			}
		}
		for _, l := range tt.lack {
			if strings.Contains(tt.got, l) {
				t.Errorf("%s holds %q:\n%s", tt.name, l, tt.got)
			}
		}
	}
}

func TestTeeHandlerEnabled(t *testing.T) {
	ctx := context.Background()
	warn := slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})
	info := slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelInfo})
	tests := []struct {
		name  string
		tee   teeHandler
		level slog.Level
		want  bool
	}{
		{"none wants debug", teeHandler{warn, info}, slog.LevelDebug, false},
		{"one wants info", teeHandler{warn, info}, slog.LevelInfo, true},
		{"both want error", teeHandler{warn, info}, slog.LevelError, true},
		{"no handlers", teeHandler{}, slog.LevelError, false},
	}
	for _, tt := range tests {
		if got := tt.tee.Enabled(ctx, tt.level); got != tt.want {
			t.Errorf("%s: Enabled(%s) = %v, want %v", tt.name, tt.level, got, tt.want)
		}
	}
}
