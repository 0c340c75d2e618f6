package personal

import (
	"context"
	"sync"
)

// MemoryKeys is a KeyStore in memory, for tests and benchmarks: its keys
// are gone with the process. The zero value is empty and ready, and safe
// for concurrent use.
type MemoryKeys struct {
	mu   sync.Mutex
	last int64
	keys map[int64]Key
}

// SubjectKey implements KeyStore.
func (m *MemoryKeys) SubjectKey(_ context.Context, subject string) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.Subject == subject {
			return k, nil
		}
	}
	if m.keys == nil {
		m.keys = make(map[int64]Key)
	}
	m.last++
	k := Key{ID: m.last, Subject: subject, Secret: NewSecret()}
	m.keys[k.ID] = k
	return k, nil
}

// KeyByID implements KeyStore.
func (m *MemoryKeys) KeyByID(_ context.Context, id int64) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return Key{}, ErrErased
	}
	return k, nil
}

// Destroy implements KeyStore.
func (m *MemoryKeys) Destroy(_ context.Context, subject string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, k := range m.keys {
		if k.Subject == subject {
			delete(m.keys, id)
			return id, nil
		}
	}
	return 0, nil
}
