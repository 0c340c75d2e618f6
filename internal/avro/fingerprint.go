package avro

// rabinEmpty is CRC-64-AVRO's initial value and polynomial (specification,
// "Schema Fingerprints").
const rabinEmpty uint64 = 0xc15d213aa4d7a795

// rabinTable is the specification's FP_TABLE: a constant table, built once
// when the package is initialised and only read afterwards.
var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// Fingerprint64 returns the CRC-64-AVRO (Rabin) fingerprint of data, as the
// specification defines it. Applied to a Parsing Canonical Form it gives the
// schema fingerprint used by Avro's single-object encoding (which stores it
// little-endian). It is safe for concurrent use.
func Fingerprint64(data []byte) uint64 {
	fp := rabinEmpty
	for _, c := range data {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}
