package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// configError is a mistake in the configuration file, said in the file's
// own words: the module, the setting as it is spelt there and its line,
// never a Go type.
type configError struct {
	module string // "" at the top level
	field  string // dotted path, "tls_config.ca_file"; "" for the module itself
	line   int
	msg    string
	known  []string // for an unknown field: what it could have been
}

func (e *configError) Error() string {
	var b strings.Builder
	if e.module != "" {
		fmt.Fprintf(&b, "module %q: ", e.module)
	}
	switch {
	case e.known != nil:
		fmt.Fprintf(&b, "unknown field %q (line %d); known fields here: %s", e.field, e.line, strings.Join(e.known, ", "))
		return b.String()
	case e.field != "":
		fmt.Fprintf(&b, "field %q: ", e.field)
	}
	fmt.Fprintf(&b, "%s (line %d)", e.msg, e.line)
	return b.String()
}

// decodeConfig decodes the configuration file's text. Modules are decoded
// one by one from the YAML tree, so that every error can name its module
// and line: yaml.v3 alone reports "field timeot not found in type
// probe.plain", and errors from Module.Validate carry no position at all.
func decodeConfig(b []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errors.New("empty configuration")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &configError{line: root.Line, msg: "want a mapping with a modules: key, found " + describeNode(root)}
	}
	var modules, allowed *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i]; k.Value {
		case "modules":
			modules = root.Content[i+1]
		case "allowed_targets":
			allowed = root.Content[i+1]
		default:
			return nil, &configError{field: k.Value, line: k.Line, known: []string{"modules", "allowed_targets"}}
		}
	}
	if modules == nil || isNull(modules) || (modules.Kind == yaml.MappingNode && len(modules.Content) == 0) {
		return nil, errors.New("no modules defined")
	}
	if modules.Kind != yaml.MappingNode {
		return nil, &configError{field: "modules", line: modules.Line, msg: "want a mapping of module names to modules, found " + describeNode(modules)}
	}
	c := &Config{Modules: map[string]probe.Module{}}
	if allowed != nil && !isNull(allowed) {
		if err := allowed.Decode(&c.AllowedTargets); err != nil {
			return nil, &configError{field: "allowed_targets", line: allowed.Line, msg: "want a list of ADDRESS-OR-CIDR[:PORT[-PORT]] or HOSTNAME-GLOB[:PORT[-PORT]] entries, found " + describeNode(allowed)}
		}
		var err error
		if c.allowed, err = probe.ParseAllowList("allowed_targets", c.AllowedTargets); err != nil {
			return nil, &configError{field: "allowed_targets", line: allowed.Line, msg: err.Error()}
		}
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(modules.Content); i += 2 {
		name, node := modules.Content[i], modules.Content[i+1]
		if first, dup := lines[name.Value]; dup {
			return nil, &configError{module: name.Value, line: name.Line, msg: fmt.Sprintf("defined twice, first at line %d", first)}
		}
		lines[name.Value] = name.Line
		m, err := decodeModule(node, name.Line)
		if err != nil {
			var ce *configError
			if errors.As(err, &ce) {
				ce.module = name.Value
				return nil, ce
			}
			return nil, fmt.Errorf("module %q (line %d): %w", name.Value, name.Line, err)
		}
		c.Modules[name.Value] = m
	}
	return c, nil
}

// decodeModule checks a module's settings against the fields Module has,
// decodes it (defaults, then Validate) and compiles it (reads its files).
// line is that of the module's name, where a mistake in a default is shown.
func decodeModule(node *yaml.Node, line int) (probe.Module, error) {
	var m probe.Module
	if isNull(node) {
		node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: node.Line} // "name:" alone: every default
	}
	if err := checkFields(node, reflect.TypeFor[probe.Module](), ""); err != nil {
		return m, err
	}
	err := node.Decode(&m)
	if err == nil {
		err = m.Compile()
	}
	var fe *probe.FieldError
	if errors.As(err, &fe) {
		return m, &configError{field: fe.Field, line: lineOf(node, fe.Field, line), msg: fe.Err.Error()}
	}
	return m, err
}

// checkFields reports the first setting of a mapping that t has no field
// for, or whose value cannot become that field's type.
func checkFields(node *yaml.Node, t reflect.Type, prefix string) error {
	if isNull(node) {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return &configError{field: prefix, line: node.Line, msg: "want a mapping of settings, found " + describeNode(node)}
	}
	fields, names := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		f, ok := fields[k.Value]
		if !ok {
			return &configError{field: path, line: k.Line, known: names}
		}
		if first, dup := seen[k.Value]; dup {
			return &configError{field: path, line: k.Line, msg: fmt.Sprintf("set twice, first at line %d", first)}
		}
		seen[k.Value] = k.Line
		if f.Type.Kind() == reflect.Struct && !(v.Kind == yaml.ScalarNode && decodesItself(f.Type)) {
			if err := checkFields(v, f.Type, path); err != nil {
				return err
			}
			continue
		}
		if err := v.Decode(reflect.New(f.Type).Interface()); err != nil {
			return &configError{field: path, line: v.Line, msg: fmt.Sprintf("%s is not %s", describeNode(v), wants(f.Type))}
		}
	}
	return nil
}

// decodesItself reports whether a setting's type has its own YAML decoder,
// which may take a shorthand: `starttls: smtp` for `starttls: {protocol:
// smtp}`. A scalar is then the decoder's to judge, not a missing mapping.
func decodesItself(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[interface {
		UnmarshalYAML(func(any) error) error
	}]())
}

// yamlFields returns the settings a struct has, by the names yaml.v3 gives
// them, and those names in declaration order.
func yamlFields(t reflect.Type) (map[string]reflect.StructField, []string) {
	fields := map[string]reflect.StructField{}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
			continue
		case slices.Contains(strings.Split(opts, ","), "inline"):
			inner, innerNames := yamlFields(f.Type)
			for n, g := range inner {
				fields[n] = g
			}
			names = append(names, innerNames...)
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
		names = append(names, name)
	}
	return fields, names
}

// wants says, for people, what values a setting of type t takes.
func wants(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 10s or 500ms"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list such as [a, b]"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	}
	return "a " + t.Kind().String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// lineOf returns the line of the setting at a dotted path, or of the
// deepest part of it the file has, or else line: a default is in no line of
// its own.
func lineOf(node *yaml.Node, path string, line int) int {
	for part := range strings.SplitSeq(path, ".") {
		if node.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == part {
				line, next = node.Content[i].Line, node.Content[i+1]
			}
		}
		if next == nil {
			break
		}
		node = next
	}
	return line
}
