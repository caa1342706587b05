package command

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a key made by LoadOrCreateKey, in bytes (256 bits, the
// block of SHA-256 is larger, so HMAC uses it as it is).
const KeySize = 32

// MinKeySize is the smallest key LoadKey accepts, in bytes. Keys written by hand or
// by other tools may be shorter than KeySize, but not guessable.
const MinKeySize = 16

// ErrKeyPermissions is wrapped when a key file can be read by every user.
var ErrKeyPermissions = errors.New("key file readable by other users")

// LoadKey reads a command key file: the key in hex (one trailing newline and
// surrounding spaces ignored), at least MinKeySize bytes. A file that other users
// may read or write (any of the "other" permission bits) is refused: whoever can
// read the key can steer the robot. Group access is allowed, for an operators'
// group on the robot itself.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("command key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("command key %s: %w (mode %04o): run chmod 600 %s, and replace the key if others may have seen it",
			path, ErrKeyPermissions, perm, path)
	}
	const maxFile = 4 * KeySize // generous: hex, a newline, a long hand-made key
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("command key %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < MinKeySize || len(b) > maxFile {
		return nil, fmt.Errorf("command key %s: want the key as %d or more hex digits and nothing else", path, 2*MinKeySize)
	}
	return key, nil
}

// LoadOrCreateKey loads the key at path, or, when there is no file, creates a new
// random key of KeySize bytes there (hex, mode 0600) and reports created, so the
// caller can say where it is: operators need a copy to sign commands. The parent
// directory is created (0700) if missing.
//
// The key appears atomically and is never overwritten: it is written and synced to a
// temporary file in the same directory, then linked to path, which fails if another
// process created a key first (that key is then loaded instead). On file systems
// without hard links it falls back to a rename.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("command key: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("command key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".cmd-key-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("command key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("command key: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err = LoadKey(path) // another process won the race
			return key, false, err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, false, fmt.Errorf("command key: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable before we tell anyone about it
		d.Close()
	}
	return key, true, nil
}
