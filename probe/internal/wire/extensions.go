package wire

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// Extension is an extension a message type does not model, kept verbatim so
// that a parsed message marshals to the same bytes.
type Extension struct {
	Type uint16
	Data []byte
}

// readExtensions calls read for each extension of a list, in order, after
// checking that it is well-formed and not a repeat. read returns known ==
// false for an extension it does not model; its contents are then appended
// to *other. It returns the types in the order sent (non-nil, even for an
// empty list).
func readExtensions(msg string, exts cryptobyte.String, other *[]Extension, read func(typ uint16, data cryptobyte.String) (known bool, err error)) ([]uint16, error) {
	types := []uint16{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) {
			return nil, fmt.Errorf("%s: extension type truncated", msg)
		}
		if !exts.ReadUint16LengthPrefixed(&data) {
			return nil, fmt.Errorf("%s: extension %d truncated", msg, typ)
		}
		if slices.Contains(types, typ) {
			return nil, fmt.Errorf("%s: extension %d sent twice", msg, typ)
		}
		types = append(types, typ)
		known, err := read(typ, data)
		if err != nil {
			return nil, err
		}
		if !known {
			*other = append(*other, Extension{Type: typ, Data: bytes.Clone([]byte(data))})
		}
	}
	return types, nil
}

// addExtensions writes an extension list in the given order. add writes the
// contents of the extensions the message models and reports whether it knew
// typ; the others come from other.
func addExtensions(b *cryptobyte.Builder, msg string, order []uint16, other []Extension, add func(b *cryptobyte.Builder, typ uint16) bool) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for i, typ := range order {
			if slices.Contains(order[:i], typ) {
				b.SetError(fmt.Errorf("%s: extension %d listed twice", msg, typ))
				return
			}
			b.AddUint16(typ)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				// An extension kept verbatim is one the typed fields
				// could not express (a renegotiation_info that is not
				// empty, say): its bytes win over the typed form.
				if i := slices.IndexFunc(other, func(e Extension) bool { return e.Type == typ }); i >= 0 {
					b.AddBytes(other[i].Data)
					return
				}
				if !add(b, typ) {
					b.SetError(fmt.Errorf("%s: extension %d listed without contents", msg, typ))
				}
			})
		}
	})
}

// orderOf returns order when set (a parsed message's), else the types in
// present (canonical order) followed by those of other not among them.
func orderOf(order []uint16, present []uint16, other []Extension) []uint16 {
	if order != nil {
		return order
	}
	out := slices.Clone(present)
	for _, e := range other {
		if !slices.Contains(out, e.Type) {
			out = append(out, e.Type)
		}
	}
	return out
}

// hasExtension reports whether the extension list types holds ext.
func hasExtension(types []uint16, ext uint16) bool { return slices.Contains(types, ext) }

func addUint16List(b *cryptobyte.Builder, vs []uint16) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, v := range vs {
			b.AddUint16(v)
		}
	})
}

func readUint16List(s *cryptobyte.String, prefix8 bool) ([]uint16, bool) {
	var list cryptobyte.String
	ok := false
	if prefix8 {
		ok = s.ReadUint8LengthPrefixed(&list)
	} else {
		ok = s.ReadUint16LengthPrefixed(&list)
	}
	if !ok || len(list)%2 != 0 {
		return nil, false
	}
	vs := make([]uint16, 0, len(list)/2)
	for !list.Empty() {
		var v uint16
		list.ReadUint16(&v)
		vs = append(vs, v)
	}
	return vs, true
}
