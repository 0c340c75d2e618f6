package avro

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"testing"
)

func TestParseDecimalKeepsTheWrittenScale(t *testing.T) {
	tests := []struct {
		in, out string
		scale   int
	}{
		{"15.99", "15.99", 2},
		{"15.90", "15.90", 2},
		{"-0.05", "-0.05", 2},
		{"+7", "7", 0},
		{"0", "0", 0},
		{"000.10", "0.10", 2},
		{".5", "0.5", 1},
		{"5.", "5", 0},
		{"1.5e3", "1500", 0},
		{"1.5E-3", "0.0015", 4},
		{"123456789012345678901234567890.5", "123456789012345678901234567890.5", 1},
		{"-123456789012345678901234567890", "-123456789012345678901234567890", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in+" is "+tt.out, func(t *testing.T) {
			d, err := ParseDecimal(tt.in)
			if err != nil || d.String() != tt.out || d.Scale() != tt.scale {
				t.Errorf("ParseDecimal(%q) = %v (scale %d), %v, want %s (scale %d)", tt.in, d, d.Scale(), err, tt.out, tt.scale)
			}
		})
	}
	for _, in := range []string{"", "-", "abc", "1.2.3", "1e", "--1", "1e5000", "0x10", " 1", "1,5", "NaN"} {
		t.Run("rejects "+in, func(t *testing.T) {
			if d, err := ParseDecimal(in); err == nil {
				t.Errorf("ParseDecimal(%q) = %v, want an error", in, d)
			}
		})
	}
}

func TestDecimalMarshalsAsAnExactJSONString(t *testing.T) {
	d := NewDecimalInt64(1590, 2)
	b, err := json.Marshal(map[string]any{"price": d})
	if err != nil || string(b) != `{"price":"15.90"}` {
		t.Errorf("json.Marshal = %s, %v, want {\"price\":\"15.90\"}", b, err)
	}
	var back struct{ Price Decimal }
	if err := json.Unmarshal([]byte(`{"Price": 15.9}`), &back); err != nil || back.Price.Cmp(d) != 0 {
		t.Errorf("json.Unmarshal(15.9) = %v, %v, want 15.9", back.Price, err)
	}
	if r := d.Rat(); r.Cmp(big.NewRat(159, 10)) != 0 {
		t.Errorf("Rat() = %v, want 159/10", r)
	}
}

// javaBytes is Java's BigInteger.toByteArray, written independently of the
// code under test: the shortest big-endian two's complement.
func javaBytes(x *big.Int) []byte {
	bitLen := x.BitLen()
	if x.Sign() < 0 {
		bitLen = new(big.Int).Sub(new(big.Int).Neg(x), big.NewInt(1)).BitLen()
	}
	n := bitLen/8 + 1
	mod := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	v := new(big.Int).Mod(x, mod) // in [0, 2^(8n))
	out := v.FillBytes(make([]byte, n))
	return out
}

func TestDecimalTwosComplementMatchesJava(t *testing.T) {
	huge, _ := new(big.Int).SetString("99999999999999999999999999999999999999", 10)
	values := []*big.Int{huge, new(big.Int).Neg(huge),
		new(big.Int).Lsh(big.NewInt(1), 63), new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1))}
	for _, v := range []int64{0, 1, -1, 127, -127, 128, -128, 129, -129, 255, -255, 256, -256,
		32767, -32768, 32768, -32769, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		values = append(values, big.NewInt(v))
	}
	for _, x := range values {
		t.Run(x.String(), func(t *testing.T) {
			d := NewDecimal(x, 3)
			got := d.appendTwosComplement(nil)
			if want := javaBytes(x); hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("appendTwosComplement(%v) = %x, want %x", x, got, want)
			}
			if back := decimalFromTwosComplement(got, 3); back.Unscaled().Cmp(x) != 0 {
				t.Errorf("decimalFromTwosComplement(%x) = %v, want %v", got, back.Unscaled(), x)
			}
			fixed, ok := d.appendFixedTwosComplement(nil, 17)
			if !ok || len(fixed) != 17 {
				t.Fatalf("appendFixedTwosComplement(%v, 17) = %x, %v", x, fixed, ok)
			}
			if back := decimalFromTwosComplement(fixed, 3); back.Unscaled().Cmp(x) != 0 {
				t.Errorf("decimalFromTwosComplement(%x) = %v, want %v", fixed, back.Unscaled(), x)
			}
		})
	}
	if _, ok := NewDecimalInt64(128, 0).appendFixedTwosComplement(nil, 1); ok {
		t.Error("128 fits a fixed of one byte, want it refused")
	}
}
