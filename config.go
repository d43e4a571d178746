package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Config is the configuration file: a map of named modules and the targets
// they may probe.
type Config struct {
	Modules map[string]probe.Module `yaml:"modules"`
	// AllowedTargets holds --probe.allowed-targets entries. A probe must
	// pass this list and the flag's: a reload can narrow what the command
	// line allows, never widen it.
	AllowedTargets []string `yaml:"allowed_targets,omitempty"`

	allowed *probe.AllowList // compiled from AllowedTargets
}

// parseConfig decodes a configuration strictly: an unknown field is an error,
// so a typo does not silently fall back to a default. Errors name the file,
// the module, the setting and its line.
func parseConfig(file string, b []byte) (*Config, error) {
	c, err := decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// SafeConfig holds the configuration in force and swaps it on reload.
type SafeConfig struct {
	mu  sync.RWMutex
	c   *Config
	raw []byte
}

// Load reads the configuration from path, or the embedded default when path
// is empty. On error the configuration in force is kept.
func (sc *SafeConfig) Load(path string) error {
	raw := defaultConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		raw = b
	}
	c, err := parseConfig(describe(path), raw)
	if err != nil {
		return err
	}
	sc.mu.Lock()
	sc.c, sc.raw = c, raw
	sc.mu.Unlock()
	return nil
}

func describe(path string) string {
	if path == "" {
		return "(embedded config.yml)"
	}
	return path
}

// Module returns a copy of the named module.
func (sc *SafeConfig) Module(name string) (probe.Module, bool) {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	m, ok := sc.c.Modules[name]
	return m, ok
}

// AllowList returns the configuration file's allow-list.
func (sc *SafeConfig) AllowList() *probe.AllowList {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.c.allowed
}

// Modules returns a copy of the modules in force, by name.
func (sc *SafeConfig) Modules() map[string]probe.Module {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	out := make(map[string]probe.Module, len(sc.c.Modules))
	for name, m := range sc.c.Modules {
		out[name] = m
	}
	return out
}

// moduleNames lists modules' names in order, as the landing page and check's
// errors show them.
func moduleNames(modules map[string]probe.Module) []string {
	return slices.Sorted(maps.Keys(modules))
}

// Raw returns the text of the configuration in force.
func (sc *SafeConfig) Raw() []byte {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.raw
}
