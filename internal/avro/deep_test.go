package avro

import (
	"errors"
	"strings"
	"testing"
)

func TestDeeplyNestedDataRoundTrips(t *testing.T) {
	s := mustParse(t, `{"type": "record", "name": "L", "fields": [{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "L"]}]}`)
	const depth = 4000
	input := strings.Repeat(`{"v":1,"next":`, depth) + `null` + strings.Repeat(`}`, depth)
	bin := mustFromJSON(t, s, input)
	if out, err := s.ToJSON(bin); err != nil || string(out) != input {
		t.Errorf("ToJSON(FromJSON(%d levels)) = %.60s..., %v", depth, out, err)
	}
	if _, err := s.Decode(bin); err != nil {
		t.Errorf("Decode(%d levels) = %v", depth, err)
	}
	bad := strings.Repeat(`{"v":1,"next":`, depth) + `{"v":"x","next":null}` + strings.Repeat(`}`, depth)
	_, err := s.FromJSON([]byte(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Path != strings.Repeat("next.", depth)+"v" {
		t.Errorf("FromJSON(an error %d levels down) = %.80v", depth, err)
	}
}
