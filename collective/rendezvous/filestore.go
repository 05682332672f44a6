package rendezvous

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/collective"
)

// FileStore is a collective.Store over a directory that every rank can
// reach: one host, or a shared file system with working flock and rename.
// Each key is a file: Set writes a temporary file and renames it over the
// key (readers never see half a value), Add holds an flock on the key's
// lock file while it reads, adds and renames, and Get polls with backoff
// (1 ms doubling to 50 ms). Safe for concurrent use, also across processes.
type FileStore struct {
	dir    string
	closed atomic.Bool
}

var _ collective.Store = (*FileStore)(nil)

// OpenFileStore opens (creating it if needed) the store in dir.
func OpenFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("file store: empty directory: %w", collective.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

// Dir is the store's directory.
func (s *FileStore) Dir() string { return s.dir }

// keyFile maps key to its file name: "k." and the key in unpadded
// URL-safe base64, or "h." and its SHA-256 when that would be too long.
func (s *FileStore) keyFile(key string) string {
	name := "k." + base64.RawURLEncoding.EncodeToString([]byte(key))
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(key))
		name = "h." + hex.EncodeToString(sum[:])
	}
	return filepath.Join(s.dir, name)
}

func (s *FileStore) check(what, key string, value []byte) error {
	if s.closed.Load() {
		return fmt.Errorf("file store: %s %q: %w", what, key, collective.ErrClosed)
	}
	if len(key) == 0 || len(key) > MaxKeyLen || len(value) > MaxValueLen {
		return fmt.Errorf("file store: %s %q: key of %d bytes (want 1..%d) or value of %d (max %d): %w",
			what, key, len(key), MaxKeyLen, len(value), MaxValueLen, collective.ErrInvalidArgument)
	}
	return nil
}

// lock takes the exclusive flock of key's lock file.
func (s *FileStore) lock(file string) (unlock func(), err error) {
	f, err := os.OpenFile(file+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// writeAtomic writes value to a temporary file and renames it to file.
func writeAtomic(file string, value []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(value)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Set implements collective.Store.
func (s *FileStore) Set(_ context.Context, key string, value []byte) error {
	if err := s.check("set", key, value); err != nil {
		return err
	}
	file := s.keyFile(key)
	unlock, err := s.lock(file)
	if err != nil {
		return fmt.Errorf("file store: set %q: %w", key, err)
	}
	defer unlock()
	if err := writeAtomic(file, value); err != nil {
		return fmt.Errorf("file store: set %q: %w", key, err)
	}
	return nil
}

// Get implements collective.Store.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check("get", key, nil); err != nil {
		return nil, err
	}
	file := s.keyFile(key)
	backoff := time.Millisecond
	for {
		v, err := os.ReadFile(file)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file store: get %q: %w", key, err)
		}
		if s.closed.Load() {
			return nil, fmt.Errorf("file store: get %q: %w", key, collective.ErrClosed)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("file store: get %q: %w: %w", key, collective.ErrTimeout, ctx.Err())
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// Add implements collective.Store.
func (s *FileStore) Add(_ context.Context, key string, delta int64) (int64, error) {
	if err := s.check("add", key, nil); err != nil {
		return 0, err
	}
	file := s.keyFile(key)
	unlock, err := s.lock(file)
	if err != nil {
		return 0, fmt.Errorf("file store: add %q: %w", key, err)
	}
	defer unlock()
	var n int64
	v, err := os.ReadFile(file)
	switch {
	case err == nil:
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return 0, fmt.Errorf("file store: add %q: value %q is not an integer: %w", key, v, collective.ErrInvalidArgument)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("file store: add %q: %w", key, err)
	}
	n += delta
	if err := writeAtomic(file, strconv.AppendInt(nil, n, 10)); err != nil {
		return 0, fmt.Errorf("file store: add %q: %w", key, err)
	}
	return n, nil
}

// Close implements collective.Store. The directory and its files stay;
// later calls fail with collective.ErrClosed.
func (s *FileStore) Close() error {
	s.closed.Store(true)
	return nil
}
