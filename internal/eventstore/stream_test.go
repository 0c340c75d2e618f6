package eventstore

import (
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	valid := []struct {
		in, category, id string
	}{
		{"Order-a1b2c3d4", "Order", "a1b2c3d4"},
		{"Order-order-123", "Order", "order-123"},
		{"o-1", "o", "1"},
		{"Order_Line2-x", "Order_Line2", "x"},
		{"Customer-user@example.com", "Customer", "user@example.com"},
		{"Cart-a.b:c_d-e", "Cart", "a.b:c_d-e"},
		{"Order--", "Order", "-"},
		{strings.Repeat("C", 64) + "-" + strings.Repeat("i", 200), strings.Repeat("C", 64), strings.Repeat("i", 200)},
	}
	for _, tt := range valid {
		t.Run("accepts "+short(tt.in), func(t *testing.T) {
			got, err := ParseStreamID(tt.in)
			if err != nil {
				t.Fatalf("ParseStreamID(%q) = %v", tt.in, err)
			}
			if got.Category() != tt.category || got.ID() != tt.id || got.String() != tt.in {
				t.Errorf("ParseStreamID(%q) = %q, %q, %q; want %q, %q", tt.in, got.Category(), got.ID(), got.String(), tt.category, tt.id)
			}
		})
	}
	invalid := []struct {
		in, why string
	}{
		{"", `no "-"`},
		{"Order", `no "-"`},
		{"Order-", "id after the category is empty"},
		{"-abc", "category is empty"},
		{"1Order-x", "does not start with a letter"},
		{"_Order-x", "does not start with a letter"},
		{"Or der-x", `" " at offset 2`},
		{"Order.x-y", `"." at offset 5`},
		{"Ordér-x", "byte 0xc3"},
		{strings.Repeat("C", 65) + "-x", "longer than 64"},
		{"Order-" + strings.Repeat("i", 201), "longer than 200"},
		{"Order-a b", `" " at offset 1`},
		{"Order-a/b", `"/" at offset 1`},
		{"Order-a\x00", "byte 0x00"},
		{"Order-ü", "byte 0xc3"},
		{"Order-a#b", `"#"`},
		{"Order-a?b", `"?"`},
		{"Order-%41", `"%"`},
	}
	for _, tt := range invalid {
		t.Run("refuses "+short(tt.in), func(t *testing.T) {
			_, err := ParseStreamID(tt.in)
			if ErrorCode(err) != CodeInvalidStreamID {
				t.Fatalf("ParseStreamID(%q) = %v, want invalid_stream_id", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("ParseStreamID(%q) = %q, want it to say %q", tt.in, err, tt.why)
			}
		})
	}
}

func short(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// FuzzParseStreamID checks ParseStreamID against the contract's rules
// written independently, and that valid ids survive a round trip.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"Order-1", "Order-a-b", "-", "A-", "a-b.c:d@e", "Ω-1", "Order-\xff", strings.Repeat("a", 70) + "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseStreamID(s)
		if want := contractValid(s); (err == nil) != want {
			t.Fatalf("ParseStreamID(%q) = %v; the contract says valid = %v", s, err, want)
		}
		if err != nil {
			if ErrorCode(err) != CodeInvalidStreamID {
				t.Fatalf("ParseStreamID(%q) error %v has code %q", s, err, ErrorCode(err))
			}
			return
		}
		if id.String() != s || id.Category()+"-"+id.ID() != s {
			t.Fatalf("ParseStreamID(%q) round trip = %q", s, id.String())
		}
		again, err := NewStreamID(id.Category(), id.ID())
		if err != nil || again != id {
			t.Fatalf("NewStreamID(%q, %q) = %v, %v", id.Category(), id.ID(), again, err)
		}
	})
}

// contractValid is the contract's rule, written without ParseStreamID's code.
func contractValid(s string) bool {
	i := strings.IndexByte(s, '-')
	if i < 1 || i > 64 || len(s)-i-1 < 1 || len(s)-i-1 > 200 {
		return false
	}
	for j, r := range s[:i] {
		letter := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z'
		if j == 0 && !letter || !letter && !(r >= '0' && r <= '9') && r != '_' {
			return false
		}
	}
	for _, r := range s[i+1:] {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:@-", r)) {
			return false
		}
	}
	return true
}
