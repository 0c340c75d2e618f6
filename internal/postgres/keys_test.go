package postgres

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-events/strata/internal/personal"
)

func masterKeys(t *testing.T, lines ...string) *personal.MasterKeys {
	t.Helper()
	text := ""
	for _, l := range lines {
		text += l + "\n"
	}
	m, err := personal.ParseMasterKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// relationFile returns the bytes of a table's main file, read behind the
// server's back (the tests run as root, or as the cluster's owner).
func relationFile(t *testing.T, s *Store, table string) []byte {
	t.Helper()
	var dir, rel string
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('data_directory'), pg_relation_filepath($1)", table).Scan(&dir, &rel); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "CHECKPOINT"); err != nil { // the pages reach the file
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatalf("read the file of %s: %v", table, err)
	}
	return b
}

func TestTheKeyStoreKeepsOneWrappedKeyPerSubject(t *testing.T) {
	s := newStore(t, Options{})
	old := hex.EncodeToString(personal.NewSecret())
	keys := NewKeyStore(s, masterKeys(t, old))
	a, err := keys.SubjectKey(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := keys.SubjectKey(ctx, "c-1"); err != nil || again.ID != a.ID || !bytes.Equal(again.Secret, a.Secret) {
		t.Errorf("a second SubjectKey gives %+v, %v; want the same key", again, err)
	}
	b, _ := keys.SubjectKey(ctx, "c-2")
	if byID, err := keys.KeyByID(ctx, b.ID); err != nil || !bytes.Equal(byID.Secret, b.Secret) || byID.Subject != "c-2" {
		t.Errorf("KeyByID = %+v, %v", byID, err)
	}
	var wrapped []byte
	if err := s.pool.QueryRow(ctx, "SELECT wrapped FROM data_subject_keys WHERE subject = 'c-1'").Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, a.Secret) {
		t.Fatal("the key is stored in the clear")
	}
	if !bytes.Contains(relationFile(t, s, "data_subject_keys"), wrapped) {
		t.Fatal("the wrapped key is not found in the table's file: the file check below would prove nothing")
	}

	t.Run("a destroyed key is gone from the table's file, and never served again", func(t *testing.T) {
		if id, err := keys.Destroy(ctx, "c-1"); id != a.ID || err != nil {
			t.Fatalf("Destroy = %v, %v; want key %d", id, err, a.ID)
		}
		if _, err := keys.KeyByID(ctx, a.ID); !errors.Is(err, personal.ErrErased) {
			t.Errorf("KeyByID of a destroyed key = %v, want ErrErased", err)
		}
		if bytes.Contains(relationFile(t, s, "data_subject_keys"), wrapped) {
			t.Error("the destroyed wrapped key is still in the table's file")
		}
		if id, err := keys.Destroy(ctx, "c-1"); id != 0 || err != nil {
			t.Errorf("a second Destroy = %v, %v; want none", id, err)
		}
		if fresh, err := keys.SubjectKey(ctx, "c-1"); err != nil || fresh.ID == a.ID || bytes.Equal(fresh.Secret, a.Secret) {
			t.Errorf("the subject's next key = %+v, %v; want a new one", fresh, err)
		}
	})

	t.Run("a rotation rewraps every key with the new master key", func(t *testing.T) {
		current := hex.EncodeToString(personal.NewSecret())
		rotating := NewKeyStore(s, masterKeys(t, current, old))
		if k, err := rotating.KeyByID(ctx, b.ID); err != nil || !bytes.Equal(k.Secret, b.Secret) {
			t.Fatalf("during the rotation, a key wrapped by the old master key reads %v", err)
		}
		n, err := rotating.Rewrap(ctx, nil)
		if err != nil || n != 2 {
			t.Fatalf("Rewrap = %d, %v; want 2 keys", n, err)
		}
		if n, _ := rotating.Rewrap(ctx, nil); n != 0 {
			t.Errorf("a second Rewrap rewrapped %d", n)
		}
		var left int
		s.pool.QueryRow(ctx, "SELECT count(*) FROM data_subject_keys WHERE master_key <> $1", rotating.master.Current()).Scan(&left)
		if left != 0 {
			t.Errorf("%d keys are still wrapped by the old master key", left)
		}
		if _, err := keys.KeyByID(ctx, b.ID); err == nil {
			t.Error("after the rotation, the old master key alone still unwraps a key")
		}
		if k, err := NewKeyStore(s, masterKeys(t, current)).KeyByID(ctx, b.ID); err != nil || !bytes.Equal(k.Secret, b.Secret) {
			t.Errorf("after the rotation, the new master key alone reads %v", err)
		}
	})
}
