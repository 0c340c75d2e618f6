// Package personal encrypts the personal fields of events (crypto-
// shredding): each data subject has a key of its own, AES-256-GCM, made
// on first use; the writer encrypts the subject's personal fields with it,
// and destroying it erases them from every copy of the events at once, in
// the store, in Kafka's topics and in backups, where they cannot be deleted
// one by one.
//
// Keys live behind KeyStore. The store's implementation (postgres.KeyStore)
// keeps them in PostgreSQL wrapped by a master key (MasterKeys); a KMS can
// take its place.
package personal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of a data subject's key and of a master key: 256 bits.
const KeySize = 32

// Key is a data subject's key.
type Key struct {
	ID      int64 // never reused: the envelopes of the subject's fields name it
	Subject string
	Secret  []byte // KeySize bytes
}

// ErrErased is KeyStore's answer for a key that was destroyed.
var ErrErased = errors.New("the data subject's key is destroyed")

// KeyStore keeps the data subjects' keys.
type KeyStore interface {
	// SubjectKey returns subject's key, making it on first use (and
	// again after an erasure: a new key, with a new id).
	SubjectKey(ctx context.Context, subject string) (Key, error)
	// KeyByID returns the key of id, or ErrErased when it was destroyed.
	KeyByID(ctx context.Context, id int64) (Key, error)
	// Destroy destroys subject's key, so that nothing can decrypt with
	// it any more, and returns the id of the key destroyed, 0 when there
	// was none.
	Destroy(ctx context.Context, subject string) (id int64, err error)
}

// NewSecret returns a new random key.
func NewSecret() []byte {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on the platforms Go supports
	}
	return b
}

// MasterKeys wraps and unwraps data subjects' keys. The first key is the
// current one, which wraps; the others are earlier keys, kept during a
// rotation to unwrap what they wrapped until it is wrapped afresh.
type MasterKeys struct {
	keys []masterKey
}

type masterKey struct {
	id   string // the first 8 bytes of the key's SHA-256, in hex
	aead cipher.AEAD
}

// ParseMasterKeys reads master keys from text: one per line, each 32
// bytes as 64 hexadecimal digits or as base64; the first line is the
// current key. Blank lines and lines starting with # are ignored.
func ParseMasterKeys(text string) (*MasterKeys, error) {
	var m MasterKeys
	seen := make(map[string]bool)
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		secret, err := hex.DecodeString(line)
		if err != nil {
			secret, err = base64.StdEncoding.DecodeString(line)
		}
		if err != nil || len(secret) != KeySize {
			return nil, fmt.Errorf("line %d: a master key is 32 bytes, written as 64 hexadecimal digits or as base64", i+1)
		}
		k, err := newMasterKey(secret)
		if err != nil {
			return nil, err
		}
		if seen[k.id] {
			return nil, fmt.Errorf("line %d: master key %s is listed twice", i+1, k.id)
		}
		seen[k.id] = true
		m.keys = append(m.keys, k)
	}
	if len(m.keys) == 0 {
		return nil, errors.New("no master key: write one per line, 64 hexadecimal digits each, the current one first")
	}
	return &m, nil
}

// LoadMasterKeys reads the master key file (STRATA_MASTER_KEY_FILE).
func LoadMasterKeys(path string) (*MasterKeys, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the master key file: %w", err)
	}
	m, err := ParseMasterKeys(string(text))
	if err != nil {
		return nil, fmt.Errorf("the master key file %s: %w", path, err)
	}
	return m, nil
}

// WriteMasterKeyFile writes a new master key file at path, readable by
// its owner only, for demos and tests; it fails when the file exists.
func WriteMasterKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "# Strata master key: the first line is the current one.\n%s\n", hex.EncodeToString(NewSecret()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func newMasterKey(secret []byte) (masterKey, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return masterKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return masterKey{}, err
	}
	sum := sha256.Sum256(secret)
	return masterKey{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// Current returns the id of the current master key.
func (m *MasterKeys) Current() string { return m.keys[0].id }

// Wrap encrypts a subject's key with the current master key, bound to the
// subject, and returns the master key's id with the wrapped key.
func (m *MasterKeys) Wrap(subject string, secret []byte) (masterID string, wrapped []byte) {
	k := m.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return k.id, k.aead.Seal(nonce, nonce, secret, []byte(subject))
}

// Unwrap decrypts a subject's key wrapped by master key masterID.
func (m *MasterKeys) Unwrap(masterID, subject string, wrapped []byte) ([]byte, error) {
	for _, k := range m.keys {
		if k.id != masterID {
			continue
		}
		n := k.aead.NonceSize()
		if len(wrapped) < n {
			return nil, fmt.Errorf("the key of data subject %q is too short to be wrapped", subject)
		}
		secret, err := k.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(subject))
		if err != nil || len(secret) != KeySize {
			return nil, fmt.Errorf("the key of data subject %q does not unwrap with master key %s: it is damaged", subject, masterID)
		}
		return secret, nil
	}
	return nil, fmt.Errorf("the key of data subject %q is wrapped by master key %s, which the master key file does not hold", subject, masterID)
}
