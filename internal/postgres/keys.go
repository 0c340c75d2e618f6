package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/personal"
)

// KeyStore implements personal.KeyStore in the store's database: the
// data subjects' keys, wrapped by master keys that stay outside it.
type KeyStore struct {
	s      *Store
	master *personal.MasterKeys
}

// NewKeyStore returns the data subjects' keys of s, wrapped by master.
func NewKeyStore(s *Store, master *personal.MasterKeys) *KeyStore {
	return &KeyStore{s: s, master: master}
}

// OpenKeys loads the master key file at path and returns a Cipher over
// the data subjects' keys of s; nil when path is "" (no personal data).
func OpenKeys(s *Store, path string, opts personal.Options) (*personal.Cipher, error) {
	if path == "" {
		return nil, nil
	}
	master, err := personal.LoadMasterKeys(path)
	if err != nil {
		return nil, err
	}
	return personal.NewCipher(NewKeyStore(s, master), opts), nil
}

// SubjectKey implements personal.KeyStore.
func (k *KeyStore) SubjectKey(ctx context.Context, subject string) (personal.Key, error) {
	if key, err := k.bySubject(ctx, subject); !errors.Is(err, pgx.ErrNoRows) {
		return key, translate(err)
	}
	secret := personal.NewSecret()
	masterID, wrapped := k.master.Wrap(subject, secret)
	var id int64
	err := k.s.pool.QueryRow(ctx, `INSERT INTO data_subject_keys (subject, master_key, wrapped) VALUES ($1, $2, $3)
		ON CONFLICT (subject) DO NOTHING RETURNING id`, subject, masterID, wrapped).Scan(&id)
	switch {
	case err == nil:
		return personal.Key{ID: id, Subject: subject, Secret: secret}, nil
	case errors.Is(err, pgx.ErrNoRows): // another writer made it first
		key, err := k.bySubject(ctx, subject)
		return key, translate(err)
	}
	return personal.Key{}, translate(err)
}

func (k *KeyStore) bySubject(ctx context.Context, subject string) (personal.Key, error) {
	return k.unwrap(k.s.pool.QueryRow(ctx, "SELECT id, subject, master_key, wrapped FROM data_subject_keys WHERE subject = $1", subject))
}

// KeyByID implements personal.KeyStore.
func (k *KeyStore) KeyByID(ctx context.Context, id int64) (personal.Key, error) {
	key, err := k.unwrap(k.s.pool.QueryRow(ctx, "SELECT id, subject, master_key, wrapped FROM data_subject_keys WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return personal.Key{}, personal.ErrErased // ids come from envelopes: one that is gone was destroyed
	}
	return key, translate(err)
}

func (k *KeyStore) unwrap(row pgx.Row) (personal.Key, error) {
	var key personal.Key
	var masterID string
	var wrapped []byte
	if err := row.Scan(&key.ID, &key.Subject, &masterID, &wrapped); err != nil {
		return personal.Key{}, err
	}
	secret, err := k.master.Unwrap(masterID, key.Subject, wrapped)
	if err != nil {
		return personal.Key{}, err
	}
	key.Secret = secret
	return key, nil
}

// Destroy implements personal.KeyStore: it deletes the subject's key,
// then rewrites the keys' table (VACUUM FULL), so that its files hold no
// copy of the wrapped key: a plain VACUUM would leave the dead row's bytes
// in the page until they are overwritten. The rewrite takes the table's
// lock for as long as copying its live rows lasts; it waits for the lock
// at most 5 s, and when it cannot have it, the next erasure's rewrite
// clears this one's too (the error says so).
func (k *KeyStore) Destroy(ctx context.Context, subject string) (int64, error) {
	var id int64
	err := k.s.pool.QueryRow(ctx, "DELETE FROM data_subject_keys WHERE subject = $1 RETURNING id", subject).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, translate(err)
	}
	return id, k.Compact(ctx)
}

// Compact rewrites the keys' table, leaving no dead rows in its files.
func (k *KeyStore) Compact(ctx context.Context) error {
	conn, err := k.s.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET lock_timeout = '5s'"); err != nil {
		return translate(err)
	}
	defer conn.Exec(context.Background(), "RESET lock_timeout")
	if _, err := conn.Exec(ctx, "VACUUM FULL data_subject_keys"); err != nil {
		return fmt.Errorf("the key is deleted, but its table could not be rewritten to clear its dead copy (the next erasure's rewrite will): %w", translate(err))
	}
	return nil
}

// Rewrap wraps every key not wrapped by the current master key with it,
// in batches, and returns how many it rewrapped: the second step of a
// master key rotation (the README's "Rotating the master key").
func (k *KeyStore) Rewrap(ctx context.Context, progress func(done int)) (int, error) {
	done := 0
	for {
		n, err := k.rewrapBatch(ctx)
		if err != nil {
			return done, err
		}
		if n == 0 {
			if done > 0 {
				return done, k.Compact(ctx) // no copy wrapped by the old key stays in the files
			}
			return done, nil
		}
		done += n
		if progress != nil {
			progress(done)
		}
	}
}

func (k *KeyStore) rewrapBatch(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, k.s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, subject, master_key, wrapped FROM data_subject_keys
			WHERE master_key <> $1 ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED`, k.master.Current())
		if err != nil {
			return err
		}
		var keys []personal.Key
		for rows.Next() {
			key, err := k.unwrap(rows)
			if err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, key)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, key := range keys {
			masterID, wrapped := k.master.Wrap(key.Subject, key.Secret)
			if _, err := tx.Exec(ctx, "UPDATE data_subject_keys SET master_key = $2, wrapped = $3 WHERE id = $1", key.ID, masterID, wrapped); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	return n, translate(err)
}
