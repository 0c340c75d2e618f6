package avro

import "testing"

func TestFieldTypeFollowsDottedPaths(t *testing.T) {
	s := mustParse(t, `{"type": "record", "name": "Shipped", "namespace": "example.orders", "fields": [
		{"name": "orderId", "type": "string"},
		{"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
		{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
		{"name": "note", "type": ["null", "string"]},
		{"name": "address", "type": {"type": "record", "name": "Address", "fields": [
			{"name": "city", "type": "string"},
			{"name": "geo", "type": ["null", {"type": "record", "name": "Geo", "fields": [
				{"name": "lat", "type": "double"}]}]}]}},
		{"name": "billing", "type": ["Address", "null"]},
		{"name": "either", "type": ["null", "Geo", "string"]},
		{"name": "lines", "type": {"type": "array", "items": "Address"}}]}`)
	tests := []struct {
		path string
		want string // "" when there is no such field
	}{
		{"orderId", "string"},
		{"total", "decimal"},
		{"at", "timestamp-millis"},
		{"note", "null or string"},
		{"address", "record example.orders.Address"},
		{"address.city", "string"},
		{"address.geo.lat", "double"},
		{"billing.city", "string"},
		{"either", "null or record example.orders.Geo or string"},
		{"lines", "array"},
		{"orderid", ""},
		{"address.town", ""},
		{"orderId.length", ""},
		{"either.lat", ""},
		{"lines.city", ""},
		{"address.", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := s.FieldType(tt.path)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("FieldType(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.want != "")
		}
	}
}
