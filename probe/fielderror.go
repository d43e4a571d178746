package probe

import "fmt"

// FieldError is a module setting with a wrong value. Field is the setting's
// path as the configuration file spells it ("timeout",
// "tls_config.min_version"), so that the configuration loader can point at
// its line.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
