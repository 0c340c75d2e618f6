package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
)

// A rotation as the README gives it: a new key first in the file, the old
// one after, writer keys rewrap, then the old line removed.
func TestKeysNewAndARotationByRewrap(t *testing.T) {
	dir := t.TempDir()
	oldFile, newFile := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	for _, f := range []string{oldFile, newFile} {
		if out, _, err := runWriter(t, nil, "keys", "new", f); err != nil || !strings.Contains(out, "wrote a new master key") {
			t.Fatalf("keys new %s = %q, %v", f, out, err)
		}
	}
	if _, _, err := runWriter(t, nil, "keys", "new", oldFile); err == nil {
		t.Error("keys new overwrote a master key file")
	}
	url, schema := harness.NewSchema(t)
	env := map[string]string{"STRATA_DATABASE_URL": url, "STRATA_DATABASE_SCHEMA": schema, "STRATA_MASTER_KEY_FILE": oldFile}
	if _, _, err := runWriter(t, env, "migrate"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	load := func(files ...string) *personal.MasterKeys {
		var text []byte
		for _, f := range files {
			b, _ := os.ReadFile(f)
			text = append(text, b...)
		}
		m, err := personal.ParseMasterKeys(string(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var secrets [][]byte
	for _, subject := range []string{"c-1", "c-2", "c-3"} {
		k, err := postgres.NewKeyStore(store, load(oldFile)).SubjectKey(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k.Secret)
	}

	both := filepath.Join(dir, "both.key")
	os.WriteFile(both, append(must(os.ReadFile(newFile)), must(os.ReadFile(oldFile))...), 0o600)
	env["STRATA_MASTER_KEY_FILE"] = both
	out, _, err := runWriter(t, env, "keys", "rewrap")
	if err != nil || !strings.Contains(out, "rewrapped 3 keys") || !strings.Contains(out, "(3 rewrapped)") {
		t.Fatalf("keys rewrap = %q, %v", out, err)
	}
	for i, subject := range []string{"c-1", "c-2", "c-3"} {
		k, err := postgres.NewKeyStore(store, load(newFile)).SubjectKey(ctx, subject)
		if err != nil || !bytes.Equal(k.Secret, secrets[i]) {
			t.Errorf("after the rotation, the new key alone reads %s's key as %v", subject, err)
		}
	}
	if out, _, err := runWriter(t, env, "keys", "rewrap"); err != nil || !strings.Contains(out, "(0 rewrapped)") {
		t.Errorf("a second rewrap = %q, %v", out, err)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"keys"}, nil, "no subcommand"},
		{[]string{"keys", "turn"}, nil, `unknown subcommand "turn"`},
		{[]string{"keys", "new"}, nil, "one argument"},
		{[]string{"keys", "rewrap"}, map[string]string{"STRATA_DATABASE_URL": url}, "needs the master key file"},
		{[]string{"keys", "rewrap"}, map[string]string{"STRATA_DATABASE_URL": url, "STRATA_MASTER_KEY_FILE": filepath.Join(dir, "none")}, "read the master key file"},
	} {
		if _, _, err := runWriter(t, tc.env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("writer %s = %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
