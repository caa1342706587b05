package command

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "cmd.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("first run: %d bytes, created %v, %v", len(key), created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second run: created %v, same %v, %v", created, bytes.Equal(again, key), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".cmd-key-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreateKey(path)
	if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // an operators' group may read it
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Errorf("group-readable key: %v", err)
	}
}

func TestLoadKeyContent(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		content string
		ok      bool
	}{
		"hex with newline": {strings.Repeat("ab", 32) + "\n", true},
		"short":            {strings.Repeat("ab", 8), false},
		"min size":         {strings.Repeat("ab", MinKeySize), true},
		"not hex":          {strings.Repeat("zz", 32), false},
		"empty":            {"", false},
		"too long":         {strings.Repeat("ab", 4*KeySize), false},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(p); (err == nil) != tc.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}
