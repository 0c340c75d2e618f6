package personal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/avro"
)

// memKeys is MemoryKeys counting its look-ups.
type memKeys struct {
	MemoryKeys
	mu      sync.Mutex
	lookups int
}

func newMemKeys() *memKeys { return &memKeys{} }

func (m *memKeys) count() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
}

func (m *memKeys) SubjectKey(ctx context.Context, subject string) (Key, error) {
	m.count()
	return m.MemoryKeys.SubjectKey(ctx, subject)
}

func (m *memKeys) KeyByID(ctx context.Context, id int64) (Key, error) {
	m.count()
	return m.MemoryKeys.KeyByID(ctx, id)
}

const shipped = `{"type": "record", "name": "OrderShipped", "fields": [
	{"name": "orderId", "type": "string"},
	{"name": "shippingAddress", "type": "string", "strata.personal": true},
	{"name": "label", "type": ["null", "bytes"], "strata.personal": true}]}`

func encode(t *testing.T, s *avro.Schema, js string) []byte {
	t.Helper()
	bin, err := s.FromJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestSealAndOpen(t *testing.T) {
	ctx := context.Background()
	s, err := avro.Parse(shipped)
	if err != nil {
		t.Fatal(err)
	}
	keys := newMemKeys()
	c := NewCipher(keys, Options{})
	plain := encode(t, s, `{"orderId": "o-1", "shippingAddress": "42 Secret Lane", "label": "AQID"}`)
	sealed, err := c.Seal(ctx, s, "c-1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("Secret")) || bytes.Contains(sealed, []byte{1, 2, 3}) {
		t.Fatalf("sealed data holds the plaintext: %q", sealed)
	}
	js, err := s.ToJSON(sealed)
	if err != nil {
		t.Fatalf("sealed data does not decode with its own schema, as a stock consumer would: %v", err)
	}
	if !strings.Contains(string(js), `"shippingAddress":"`+Envelope) || !strings.Contains(string(js), `"orderId":"o-1"`) {
		t.Errorf("a stock consumer sees %s, want the order id and an envelope", js)
	}
	again, _ := c.Seal(ctx, s, "c-1", plain)
	if bytes.Equal(again, sealed) {
		t.Error("two seals of the same data are equal: the nonce is not fresh")
	}
	opened, err := c.Open(ctx, s, sealed)
	if err != nil || !bytes.Equal(opened, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext back", opened, err)
	}
	other, _ := c.Seal(ctx, s, "c-2", plain)

	t.Run("a null personal field stays null", func(t *testing.T) {
		plain := encode(t, s, `{"orderId": "o-1", "shippingAddress": "x", "label": null}`)
		sealed, _ := c.Seal(ctx, s, "c-1", plain)
		if js, _ := s.ToJSON(sealed); !strings.Contains(string(js), `"label":null`) {
			t.Errorf("a null personal field sealed reads %s", js)
		}
	})

	t.Run("after Destroy the subject's fields open as erased, another subject's still open", func(t *testing.T) {
		if ok, err := c.Destroy(ctx, "c-1"); !ok || err != nil {
			t.Fatalf("Destroy = %v, %v", ok, err)
		}
		opened, err := c.Open(ctx, s, sealed)
		if err != nil {
			t.Fatalf("Open of an erased subject's data = %v, want no error", err)
		}
		js, _ := s.ToJSON(opened)
		if !strings.Contains(string(js), `"shippingAddress":"[erased]"`) || !strings.Contains(string(js), `"label":"W2VyYXNlZF0="`) {
			t.Errorf(`erased data reads %s, want "[erased]" for the string and its bytes for the bytes`, js)
		}
		if o, err := c.Open(ctx, s, other); err != nil || !bytes.Equal(o, plain) {
			t.Errorf("another subject's data opens as %q, %v", o, err)
		}
		n := keys.lookups
		c.Open(ctx, s, sealed)
		if keys.lookups != n {
			t.Error("an erased key is looked up again: it is not cached as erased")
		}
		if fresh, _ := c.Seal(ctx, s, "c-1", plain); bytes.Equal(fresh[:40], sealed[:40]) {
			t.Error("a subject sealed after its erasure reuses the destroyed key's id")
		}
	})

	t.Run("tampered or foreign values are errors, not plaintext", func(t *testing.T) {
		for name, mutate := range map[string]func([]byte) []byte{
			"a flipped ciphertext byte": func(b []byte) []byte {
				i := bytes.Index(b, []byte(Envelope)) + len(Envelope) + 40
				b[i] ^= 1
				if b[i] == '\x00' || b[i] == '+' {
					b[i] = 'A'
				}
				return b
			},
		} {
			bad := mutate(bytes.Clone(other))
			if _, err := c.Open(ctx, s, bad); err == nil {
				t.Errorf("%s opens without error", name)
			}
		}
		if _, err := c.Open(ctx, s, plain); err == nil || !strings.Contains(err.Error(), "not written by a Strata writer") {
			t.Errorf("plaintext in a personal field opens as %v", err)
		}
	})
}

func TestTheCacheIsBoundedAndExpires(t *testing.T) {
	ctx := context.Background()
	s, _ := avro.Parse(shipped)
	keys := newMemKeys()
	c := NewCipher(keys, Options{CacheSize: 2, CacheTTL: time.Minute})
	now := time.Now()
	c.now = func() time.Time { return now }
	plain := encode(t, s, `{"orderId": "o", "shippingAddress": "a", "label": null}`)
	for _, subject := range []string{"a", "b", "c", "a"} {
		if _, err := c.Seal(ctx, s, subject, plain); err != nil {
			t.Fatal(err)
		}
	}
	if c.cache.order.Len() != 2 {
		t.Errorf("the cache holds %d keys, want its bound 2", c.cache.order.Len())
	}
	if keys.lookups != 4 {
		t.Errorf("%d look-ups for a, b, c, a with room for 2, want 4 (a was evicted)", keys.lookups)
	}
	c.Seal(ctx, s, "a", plain)
	if keys.lookups != 4 {
		t.Error("a cached key is looked up again")
	}
	sealed, _ := c.Seal(ctx, s, "a", plain)
	now = now.Add(2 * SealTTL)
	c.Seal(ctx, s, "a", plain)
	if keys.lookups != 5 {
		t.Errorf("a key cached for longer than SealTTL encrypts without a look-up: one erased elsewhere would seal new data")
	}
	c.Open(ctx, s, sealed)
	if keys.lookups != 5 {
		t.Error("a key cached within CacheTTL is looked up again to decrypt")
	}
	now = now.Add(2 * time.Minute)
	c.Open(ctx, s, sealed)
	if keys.lookups != 6 {
		t.Error("an expired key is not looked up again")
	}
}

func TestMasterKeys(t *testing.T) {
	k1, k2 := hex.EncodeToString(NewSecret()), hex.EncodeToString(NewSecret())
	old, err := ParseMasterKeys(k1)
	if err != nil {
		t.Fatal(err)
	}
	id, wrapped := old.Wrap("c-1", bytes.Repeat([]byte{7}, KeySize))
	rotated, err := ParseMasterKeys("# new first\n" + k2 + "\n\n" + k1 + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current() == id {
		t.Fatal("the rotated file's current key is the old one")
	}
	if secret, err := rotated.Unwrap(id, "c-1", wrapped); err != nil || secret[0] != 7 {
		t.Errorf("a key wrapped by the old master key does not unwrap during the rotation: %v", err)
	}
	if _, err := rotated.Unwrap(id, "c-2", wrapped); err == nil {
		t.Error("a wrapped key unwraps for another subject")
	}
	fresh, _ := ParseMasterKeys(k2)
	if _, err := fresh.Unwrap(id, "c-1", wrapped); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("unwrapping with a file lacking the key = %v, want an error naming it", err)
	}
	for _, bad := range []string{"", "# only a comment", "abc", k1 + "\n" + k1, strings.Repeat("z", 64)} {
		if _, err := ParseMasterKeys(bad); err == nil {
			t.Errorf("ParseMasterKeys(%q) accepted it", bad)
		}
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if err := WriteMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("the master key file's mode is %v, want 0600", st.Mode().Perm())
	}
	if _, err := LoadMasterKeys(path); err != nil {
		t.Errorf("a written master key file does not load: %v", err)
	}
	if err := WriteMasterKeyFile(path); err == nil {
		t.Error("WriteMasterKeyFile overwrote a master key file")
	}
	if _, err := LoadMasterKeys(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loading a missing file = %v", err)
	}
}

func BenchmarkSealAndOpen(b *testing.B) {
	ctx := context.Background()
	s, _ := avro.Parse(shipped)
	c := NewCipher(newMemKeys(), Options{})
	plain, _ := s.FromJSON([]byte(`{"orderId": "o-1", "shippingAddress": "42 Secret Lane", "label": null}`))
	sealed, _ := c.Seal(ctx, s, "c-1", plain)
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			c.Seal(ctx, s, "c-1", plain)
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			c.Open(ctx, s, sealed)
		}
	})
}
