package wire

import (
	"bytes"
	"testing"
)

// What Sealer13 protects, a decrypter of the same secret opens: the record
// layer both directions share.
func TestSealer13RoundTrip(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer13(0x1301, secret)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	for _, p := range []string{"HEAD / HTTP/1.0\r\n\r\n", "", "more"} {
		if stream, err = s.Seal(stream, RecordApplicationData, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := newDecrypter(0x1301, secret)
	if err != nil {
		t.Fatal(err)
	}
	recs, rest, err := parseRecords(stream)
	if err != nil || len(rest) != 0 || len(recs) != 3 {
		t.Fatalf("records %d, rest %d, %v", len(recs), len(rest), err)
	}
	for i, want := range []string{"HEAD / HTTP/1.0\r\n\r\n", "", "more"} {
		typ, got, err := d.Open(recs[i])
		if err != nil || typ != RecordApplicationData || string(got) != want {
			t.Errorf("record %d: type %d %q %v, want %q", i, typ, got, err, want)
		}
	}
}

func TestEncryptedExtensionsRoundTrip(t *testing.T) {
	for _, ee := range []*EncryptedExtensions{
		{EarlyData: true},
		{},
		{EarlyData: true, Other: []Extension{{Type: extALPN, Data: []byte{0, 3, 2, 'h', '2'}}}},
	} {
		msg, err := ee.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseEncryptedExtensions(msg[handshakeHeaderLen:])
		if err != nil || got.EarlyData != ee.EarlyData || len(got.Other) != len(ee.Other) {
			t.Errorf("%+v → %+v, %v", ee, got, err)
		}
	}
	if _, err := ParseEncryptedExtensions([]byte{0, 4, 0, 42, 0, 1}); err == nil {
		t.Error("truncated extension accepted")
	}
}

func FuzzParseEncryptedExtensions(f *testing.F) {
	for _, ee := range []*EncryptedExtensions{{EarlyData: true}, {}, {Other: []Extension{{Type: extALPN, Data: []byte{0, 3, 2, 'h', '2'}}}}} {
		msg, err := ee.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg[handshakeHeaderLen:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ee, err := ParseEncryptedExtensions(body)
		if err != nil {
			return
		}
		msg, err := ee.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v does not marshal: %v", ee, err)
		}
		if !bytes.Equal(msg[handshakeHeaderLen:], body) {
			t.Fatalf("round trip changed %x to %x", body, msg[handshakeHeaderLen:])
		}
	})
}
